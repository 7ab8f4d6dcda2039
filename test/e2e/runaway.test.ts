// Code that misbehaves on purpose: each run ends with a clear termination reason, the
// evidence of every run is complete, and the server keeps serving. A busy loop or a memory
// bomb takes the whole local runtime down (open-source workerd enforces no CPU or per-isolate
// memory limit); the supervisor brings it back and closes the runs it lost.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, type McpSession, type ToolCallResult } from "../helpers/mcp-clients.ts";

let server: LocalServer;
let runaway: McpSession;
const RUNAWAY = { tenant: "acme", actor: "mallory", session: "s-runaway" };
const BYSTANDER = { tenant: "globex", actor: "gina", session: "s-bystander" };

beforeAll(async () => {
  const quick = readOnlyContract("quick-probe", "probe_quick", { limits: { wallMs: 1000, outputBytes: 65536 } });
  // the memory bomb gets a long wall clock so that the heap limit, not the watchdog, ends it
  // even on a slow machine: this test is about the crash path
  const roomy = readOnlyContract("roomy-probe", "probe_roomy", { limits: { wallMs: 20_000, outputBytes: 65536 } });
  const dirs = dataDirs(
    { "quick-probe": quick, "roomy-probe": roomy },
    {
      tenants: {
        acme: {
          phases: [1],
          teams: {
            all: {
              members: ["*"],
              grants: [
                { contract: "quick-probe", maxDataClass: "internal" },
                { contract: "roomy-probe", maxDataClass: "internal" },
              ],
            },
          },
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

type Envelope = { runId: string; termination: string; error?: { code: string; message: string } };
const envelope = (result: ToolCallResult) => result.structuredContent as Envelope;

async function records(identity: { tenant: string; actor: string; session: string }): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${server.url}/v1/sessions/${identity.session}/evidence?limit=500`, {
    headers: { authorization: `Bearer ${await server.token(identity)}` },
  });
  return ((await response.json()) as { records: Array<Record<string, unknown>> }).records;
}

/** Every start has exactly one finish, and the finish says how the run ended. */
function complete(list: Array<Record<string, unknown>>): Map<string, string> {
  const ended = new Map<string, string>();
  const started = list.filter((r) => r.kind === "run.started").map((r) => r.runId as string);
  for (const r of list.filter((r) => r.kind === "run.finished")) ended.set(r.runId as string, r.termination as string);
  expect([...ended.keys()].sort()).toEqual([...started].sort());
  return ended;
}

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

  it("stops a busy loop, records it as timed_out, and another tenant's calls resume with complete evidence", async () => {
    const bystander = await connectClient(CLIENT_KINDS[0], server.mcpUrl, await server.token(BYSTANDER));
    const answers: Array<{ at: number; termination: string }> = [];
    let stop = false;
    const keepCalling = (async () => {
      while (!stop) {
        const result = await bystander.callTool("analyze_readonly", { code: "export default () => 'ok'", dataClass: "public" });
        answers.push({ at: Date.now(), termination: envelope(result)?.termination ?? "no envelope" });
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300)); // the bystander is mid-stream when the loop starts
    const startedAt = Date.now();
    const result = await runaway.callTool("probe_quick", { code: "export default () => { while (true) {} }" });
    const answeredAt = Date.now();
    // resume: wait for a bystander call that completes after the runaway was answered
    while (!answers.some((a) => a.at > answeredAt && a.termination === "completed")) await new Promise((resolve) => setTimeout(resolve, 50));
    stop = true;
    await keepCalling;
    await bystander.close();

    expect(result.isError).toBe(true);
    expect(envelope(result)).toMatchObject({ termination: "timed_out", error: { code: "timed_out" }, runId: expect.stringMatching(/^run_/) });
    expect(answeredAt - startedAt).toBeLessThan(15_000);

    const mine = complete(await records(RUNAWAY));
    expect(mine.get(envelope(result).runId)).toBe("timed_out");
    const theirs = complete(await records(BYSTANDER));
    // the bystander's runs either completed or, if the restart cut one off, were cancelled; none is left open
    expect([...theirs.values()].every((t) => t === "completed" || t === "cancelled")).toBe(true);
    expect(answers.filter((a) => a.termination === "completed").length).toBeGreaterThan(1);
    console.log(`busy loop: answered timed_out after ${answeredAt - startedAt} ms; bystander made ${answers.length} calls`);
  });

  it("survives a memory bomb: the run ends cancelled (runtime_crashed), its evidence is closed, the server serves again", async () => {
    const startedAt = Date.now();
    const result = await runaway.callTool("probe_roomy", {
      code: "export default () => { const hoard = []; for (;;) hoard.push(new Array(1_000_000).fill(hoard.length)); }",
    });
    console.log(`memory bomb: answered after ${Date.now() - startedAt} ms`);
    expect(result.isError).toBe(true);
    const bomb = envelope(result);
    expect(bomb).toMatchObject({ termination: "cancelled", error: { code: "runtime_crashed", message: expect.stringMatching(/out of memory/) } });
    expect(complete(await records(RUNAWAY)).get(bomb.runId)).toBe("cancelled");
    expect((await runaway.callTool("probe_quick", { code: "export default () => 'after the bomb'" })).structuredContent).toMatchObject({
      result: "after the bomb",
    });
  });
});
