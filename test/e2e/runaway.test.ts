// Code that misbehaves on purpose. Each run ends with a clear termination reason, the
// evidence of every run is complete, and a runaway stops only itself: the sandboxes run in
// processes of their own (open-source workerd enforces no CPU limit, so a busy loop stalls
// its process), every run's deadline is held from the main runtime, and the watchdog
// restarts the stalled sandbox process while another tenant's calls go on elsewhere.
import { createHash } from "node:crypto";
import { request as httpRequest } from "node:http";
import { importJWK, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureKey } from "../../src/local/dev-keys.ts";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, type McpSession, type ToolCallResult } from "../helpers/mcp-clients.ts";
import { answerOf, sessionRecords, toolCallBody, toolCallHeaders } from "../helpers/mcp-http.ts";

let server: LocalServer;
let runaway: McpSession;
const RUNAWAY = { tenant: "acme", actor: "mallory", session: "s-runaway" };
const QUICK_MS = 1_000;
const BUSY = "export default () => { while (true) {} }";

beforeAll(async () => {
  const quick = readOnlyContract("quick-probe", "probe_quick", { limits: { wallMs: QUICK_MS, outputBytes: 65536 } });
  const patient = readOnlyContract("patient-probe", "probe_patient", { limits: { wallMs: 5_000, outputBytes: 65536 } });
  // the memory bomb gets a long wall clock so that the heap limit, not the deadline, ends it
  const roomy = readOnlyContract("roomy-probe", "probe_roomy", { limits: { wallMs: 30_000, outputBytes: 65536 } });
  const grants = ["quick-probe", "patient-probe", "roomy-probe"].map((contract) => ({ contract, maxDataClass: "internal" }));
  const dirs = dataDirs(
    { "quick-probe": quick, "patient-probe": patient, "roomy-probe": roomy },
    {
      tenants: {
        // one interactive slot and one batch slot: a run that kept its slot would refuse the next call
        acme: {
          phases: [1],
          budget: { interactive: { maxInFlight: 1, queueMax: 0 }, batch: { maxInFlight: 1, queueMax: 0 }, downgradeInFlight: 0 },
          teams: { all: { members: ["*"], grants } },
        },
        globex: { phases: [1], teams: { all: { members: ["*"], grants: [{ contract: "read-only-analysis", maxDataClass: "public", actions: ["read"] }] } } },
      },
    },
  );
  server = await startLocalServer({ env: dirs });
  runaway = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token(RUNAWAY));
});
afterAll(async () => {
  await runaway?.close();
  await server?.stop();
});

type Envelope = { runId: string; termination: string; error?: { code: string; message: string }; result?: unknown; budget?: { outcome: string } };
const envelope = (result: ToolCallResult) => result.structuredContent as Envelope;
type Identity = { tenant: string; actor: string; session: string };

async function records(identity: Identity): Promise<Array<Record<string, unknown>>> {
  return await sessionRecords(server.url, await server.token(identity), identity.session);
}

/** Every start has exactly one finish; the map says how each run ended. */
function complete(list: Array<Record<string, unknown>>): Map<string, string> {
  const ended = new Map<string, string>();
  const started = list.filter((r) => r.kind === "run.started").map((r) => r.runId as string);
  for (const r of list.filter((r) => r.kind === "run.finished")) ended.set(r.runId as string, r.termination as string);
  expect([...ended.keys()].sort()).toEqual([...started].sort());
  return ended;
}

/** The watchdog restarted the sandbox process a runaway stalled, and it serves again (the supervisor's log says so). */
async function restartedFor(runId: string): Promise<void> {
  await until(
    `the watchdog to restart the process of ${runId}`,
    async () => (server.output().includes(`watchdog: run ${runId} is past its deadline`) ? true : undefined),
    10_000,
  );
  await sandboxesServing();
}

/** Every sandbox process the watchdog restarted in an earlier test serves again (the supervisor says so in its log). */
async function sandboxesServing(): Promise<void> {
  await until("every sandbox process to serve again", async () => {
    const output = server.output();
    return output.split("runtime lost").length === output.split("serving again").length ? true : undefined;
  });
}

/** Another tenant calling without pause, one call after another, until stopped. */
function bystander(session: string) {
  const identity = { tenant: "globex", actor: "gina", session };
  const calls: Array<{ sentAt: number; answeredAt: number; termination: string }> = [];
  let stop = false;
  const running = (async () => {
    const client = await connectClient(CLIENT_KINDS[0], server.mcpUrl, await server.token(identity));
    while (!stop) {
      const sentAt = Date.now();
      const result = await client.callTool("analyze_readonly", { code: "export default () => 'ok'", dataClass: "public" });
      calls.push({ sentAt, answeredAt: Date.now(), termination: envelope(result)?.termination ?? `no envelope: ${JSON.stringify(result)}` });
    }
    await client.close();
  })();
  return {
    identity,
    calls,
    started: () => until("the bystander to be calling", async () => (calls.length >= 2 ? true : undefined)),
    /** Stops once two calls sent after `after` have been answered. */
    stopAfter: async (after: number) => {
      await until("the bystander to call on", async () => (calls.filter((c) => c.sentAt > after).length >= 2 ? true : undefined), 20_000);
      stop = true;
      await running;
    },
  };
}

/** One MCP tools/call sent as raw HTTP, so the path and the body's bytes are exactly as given. */
function rawCall(path: string, token: string, body: Buffer): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(server.url);
    const req = httpRequest(
      {
        host: url.hostname,
        port: url.port,
        method: "POST",
        path,
        headers: { ...toolCallHeaders(token), "content-length": body.length },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

function toolResultOf(text: string): Envelope {
  const envelope = answerOf<Envelope>(text)?.result?.structuredContent;
  if (!envelope) throw new Error(`not a tool result: ${text.slice(0, 300)}`);
  return envelope;
}

async function plannerTask(code: string, input: unknown, session: string): Promise<string> {
  const planner = await ensureKey("planner", server.stateDir);
  const now = Math.floor(Date.now() / 1000);
  const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
  return await new SignJWT({
    iss: "local-planner",
    aud: "agent-exec/execution",
    sub: "mallory",
    tenant: "acme",
    sid: session,
    contract: { id: "quick-probe" },
    code: sha256(code),
    input: sha256(JSON.stringify(input)),
    iat: now,
    nbf: now,
    exp: now + 60,
    jti: crypto.randomUUID(),
  })
    .setProtectedHeader({ alg: planner.privateJwk.alg, kid: planner.privateJwk.kid, typ: "agent-exec-task+jwt" })
    .sign(await importJWK(planner.privateJwk, planner.privateJwk.alg));
}

/** Each way a run can arrive; each sends one busy loop for tenant acme in its own session and says how it ended. */
const ENTRY_PATHS: Array<[string, (session: string) => Promise<Envelope>]> = [
  [
    "an MCP tools/call",
    async (session) => {
      const client = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token({ ...RUNAWAY, session }));
      try {
        return envelope(await client.callTool("probe_quick", { code: BUSY }));
      } finally {
        await client.close();
      }
    },
  ],
  [
    "POST /v1/tasks",
    async (session) => {
      const response = await fetch(`${server.url}/v1/tasks`, {
        method: "POST",
        headers: { authorization: `Bearer ${await server.token({ ...RUNAWAY, session })}`, "content-type": "application/json" },
        body: JSON.stringify({ contract: "quick-probe", task: await plannerTask(BUSY, {}, session), code: BUSY, input: {} }),
      });
      return (await response.json()) as Envelope;
    },
  ],
  [
    "the batch lane",
    async (session) => {
      const token = await server.token({ ...RUNAWAY, session });
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      const submitted = await fetch(`${server.url}/v1/batches`, {
        method: "POST",
        headers,
        body: JSON.stringify({ tasks: [{ contract: "probe_quick", code: BUSY }] }),
      });
      const { batchId } = (await submitted.json()) as { batchId: string };
      return await until(
        "the batch to finish",
        async () => {
          const view = (await (await fetch(`${server.url}/v1/batches/${batchId}`, { headers })).json()) as {
            counts: { done: number };
            tasks: Array<{ runId: string; outcome: Envelope }>;
          };
          const task = view.tasks[0];
          return view.counts.done === 1 && task ? { ...task.outcome, runId: task.runId } : undefined;
        },
        20_000,
      );
    },
  ],
  [
    "/./mcp",
    async (session) => {
      const body = Buffer.from(toolCallBody("probe_quick", { code: BUSY }, 1));
      return toolResultOf((await rawCall("/./mcp", await server.token({ ...RUNAWAY, session }), body)).text);
    },
  ],
  [
    "a body with a UTF-8 byte-order mark",
    async (session) => {
      const body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from(toolCallBody("probe_quick", { code: BUSY }, 1))]);
      return toolResultOf((await rawCall("/mcp", await server.token({ ...RUNAWAY, session }), body)).text);
    },
  ],
];

describe("runaway code", () => {
  it.each<[string, string, string, string]>([
    ["a huge output", "export default () => 'x'.repeat(50_000_000)", "output_too_large", "output_too_large"],
    ["unbounded recursion", "export default () => { const f = (n) => f(n + 1) + 1; return f(0); }", "failed", "code_threw"],
    [
      "a flood of promises that never settle",
      "export default () => Promise.all(Array.from({ length: 1_000_000 }, () => new Promise(() => {})))",
      "failed",
      "code_hung",
    ],
  ])("ends %s with a clear reason and keeps serving", async (_case, code, termination, errorCode) => {
    const result = await runaway.callTool("probe_quick", { code });
    expect(envelope(result)).toMatchObject({ termination, error: { code: errorCode } });
    expect((await runaway.callTool("probe_quick", { code: "export default () => 'still here'" })).structuredContent).toMatchObject({ result: "still here" });
  });

  it.each(ENTRY_PATHS)(
    "ends a busy loop sent through %s as timed_out within its deadline + 1 s, once, while another tenant's calls all complete",
    async (path, send) => {
      await sandboxesServing();
      const session = `s-busy-${path.replace(/[^a-z0-9]+/gi, "-").replace(/^-|-$/g, "")}`.slice(0, 60);
      const other = bystander(`s-bystander-${session.slice(7)}`);
      await other.started();
      const sentAt = Date.now();
      const answer = await send(session);
      const answeredAt = Date.now();
      await other.stopAfter(answeredAt);

      expect(answer).toMatchObject({ termination: "timed_out", error: { code: "timed_out" }, runId: expect.stringMatching(/^run_/) });
      const mine = await records({ ...RUNAWAY, session });
      // one call, one run: a single start, closed as timed_out
      expect(mine.filter((r) => r.kind === "run.started").map((r) => r.runId)).toEqual([answer.runId]);
      expect(complete(mine).get(answer.runId)).toBe("timed_out");
      const finish = mine.find((r) => r.kind === "run.finished") as { latencyMs: { exec: number | null; total: number } };
      expect(finish.latencyMs.exec).toBeLessThan(QUICK_MS + 1_000);
      // the batch lane waits for its queue's delivery first; every other path answers within the deadline + 1 s
      if (path !== "the batch lane") expect(answeredAt - sentAt).toBeLessThan(QUICK_MS + 1_000);

      // the other tenant: every call sent after the loop began completed, and its evidence is whole
      const during = other.calls.filter((c) => c.sentAt >= sentAt);
      expect(during.length).toBeGreaterThanOrEqual(2);
      expect(during.filter((c) => c.termination !== "completed")).toEqual([]);
      expect([...complete(await records(other.identity)).values()].every((t) => t === "completed")).toBe(true);

      await restartedFor(answer.runId);
      // the runaway's slot is back (its lane holds one) and its next call runs at once
      const next = await runaway.callTool("probe_quick", { code: "export default () => 'next'" });
      expect(envelope(next)).toMatchObject({ termination: "completed", result: "next", budget: { outcome: "granted" } });
      console.log(`busy loop via ${path}: timed_out after ${answeredAt - sentAt} ms; the other tenant made ${during.length} calls meanwhile`);
    },
  );

  it("ends a synchronous busy-wait of 9 s under wallMs 5000 as timed_out, though the code would have answered", async () => {
    const startedAt = Date.now();
    const result = await runaway.callTool("probe_patient", {
      code: "export default () => { const until = Date.now() + 9_000; while (Date.now() < until) {} return 'finished late'; }",
    });
    expect(envelope(result)).toMatchObject({ termination: "timed_out", error: { code: "timed_out" } });
    expect(Date.now() - startedAt).toBeLessThan(6_000);
    expect(complete(await records(RUNAWAY)).get(envelope(result).runId)).toBe("timed_out");
    await restartedFor(envelope(result).runId);
  });

  it("ends a memory bomb with memory_exceeded while another tenant's call, sent during it, completes", async () => {
    await sandboxesServing();
    const other = bystander("s-bystander-bomb");
    await other.started();
    const startedAt = Date.now();
    const result = await runaway.callTool("probe_roomy", {
      code: "export default () => { const hoard = []; for (;;) hoard.push(new Array(1_000_000).fill(hoard.length)); }",
    });
    const answeredAt = Date.now();
    await other.stopAfter(answeredAt);
    console.log(`memory bomb: answered after ${answeredAt - startedAt} ms`);
    expect(result.isError).toBe(true);
    const bomb = envelope(result);
    expect(bomb).toMatchObject({ termination: "memory_exceeded", error: { code: "memory_exceeded", message: expect.stringMatching(/memory/) } });
    expect(complete(await records(RUNAWAY)).get(bomb.runId)).toBe("memory_exceeded");
    const during = other.calls.filter((c) => c.sentAt >= startedAt);
    expect(during.length).toBeGreaterThanOrEqual(2);
    expect(during.filter((c) => c.termination !== "completed")).toEqual([]);
    expect((await runaway.callTool("probe_quick", { code: "export default () => 'after the bomb'" })).structuredContent).toMatchObject({
      result: "after the bomb",
    });
  });
});
