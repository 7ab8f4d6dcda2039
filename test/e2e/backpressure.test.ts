// Each backpressure mode end to end over MCP against the real server: a tenant whose
// interactive lane holds one run at a time, one slow call holding that slot, and a second
// call that is rejected (with retryAfterMs), waits its turn, or runs downgraded. Every
// outcome is in the session's evidence.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { CLIENT_KINDS, type ClientKind, connectClient, type McpSession, type ToolCallResult } from "../helpers/mcp-clients.ts";

const SLEEP = "export default (input) => new Promise((resolve) => setTimeout(() => resolve(input.tag), input.ms))";
const contract = readOnlyContract;

let server: LocalServer;
const sessions: McpSession[] = [];

beforeAll(async () => {
  const contracts = {
    "slow-reject": contract("slow-reject", "slow_reject", { limits: { wallMs: 10_000 }, backpressure: { mode: "reject" } }),
    "slow-delay": contract("slow-delay", "slow_delay", { limits: { wallMs: 10_000 }, backpressure: { mode: "delay", maxWaitMs: 8_000 } }),
    "slow-hasty": contract("slow-hasty", "slow_hasty", { limits: { wallMs: 10_000 }, backpressure: { mode: "delay", maxWaitMs: 100 } }),
    heavy: contract("heavy", "heavy", { limits: { wallMs: 10_000 }, backpressure: { mode: "downgrade", downgradeTo: "lite" } }),
    lite: contract("lite", "lite", { limits: { wallMs: 3_000, codeBytes: 200 } }),
  };
  const grants = Object.keys(contracts).map((id) => ({ contract: id, maxDataClass: "internal" }));
  server = await startLocalServer({
    env: dataDirs(contracts, {
      tenants: {
        narrow: {
          phases: [1],
          roles: ["auditor"],
          budget: { interactive: { maxInFlight: 1, queueMax: 4 }, batch: { maxInFlight: 1, queueMax: 0 }, downgradeInFlight: 1 },
          teams: { all: { members: ["*"], grants } },
        },
      },
    }),
  });
}, 120_000);

afterAll(async () => {
  for (const session of sessions) await session.close();
  await server?.stop();
});

async function client(session: string, kind: ClientKind = CLIENT_KINDS[1]): Promise<McpSession> {
  const connected = await connectClient(kind, server.mcpUrl, await server.token({ tenant: "narrow", actor: "ops", session }));
  sessions.push(connected);
  return connected;
}

type Envelope = {
  runId: string;
  termination: string;
  result?: unknown;
  error?: { code: string; message: string; retryAfterMs?: number };
  budget?: { lane: string; outcome: string; queuedMs: number; contract: string; downgradedFrom?: string };
};
const envelope = (result: ToolCallResult) => result.structuredContent as Envelope;

/** Starts a call that holds the tenant's only slot for `ms`, and returns once the budget counts it (wrapped: an async function would await it). */
async function holdSlot(session: McpSession, ms: number): Promise<{ holding: Promise<ToolCallResult> }> {
  const holding = session.callTool("slow_reject", { code: SLEEP, input: { ms, tag: "holder" } });
  const auditor = await server.token({ tenant: "narrow", actor: "auditor", session: "s-metrics", roles: ["auditor"] });
  await until("the holder to take the tenant's slot", async () => {
    const metrics = (await (await fetch(`${server.url}/v1/metrics?window=10s`, { headers: { authorization: `Bearer ${auditor}` } })).json()) as {
      tenants: Record<string, { inFlight: { interactive: number } }>;
    };
    return (metrics.tenants.narrow?.inFlight.interactive ?? 0) >= 1 ? true : undefined;
  });
  return { holding };
}

async function records(session: string): Promise<Array<Record<string, unknown>>> {
  const token = await server.token({ tenant: "narrow", actor: "auditor", session: "audit", roles: ["auditor"] });
  const response = await fetch(`${server.url}/v1/sessions/${session}/evidence?limit=100`, { headers: { authorization: `Bearer ${token}` } });
  return ((await response.json()) as { records: Array<Record<string, unknown>> }).records;
}
const startOf = (list: Array<Record<string, unknown>>, runId: string) => list.find((r) => r.kind === "run.started" && r.runId === runId);
const finishOf = (list: Array<Record<string, unknown>>, runId: string) => list.find((r) => r.kind === "run.finished" && r.runId === runId);

describe("backpressure over MCP", () => {
  it("reject: refuses at once with over_budget and retryAfterMs, runs nothing, and records it", async () => {
    const [a, b] = [await client("s-reject"), await client("s-reject", CLIENT_KINDS[0])];
    const { holding } = await holdSlot(a, 1_500);
    const startedAt = Date.now();
    const refused = await b.callTool("slow_reject", { code: SLEEP, input: { ms: 1, tag: "second" } });
    expect(Date.now() - startedAt).toBeLessThan(1_000);
    expect(refused.isError).toBe(true);
    const body = envelope(refused);
    expect(body).toMatchObject({ termination: "denied", error: { code: "over_budget" }, budget: { lane: "interactive", outcome: "rejected" } });
    expect(body.error?.retryAfterMs).toBeGreaterThan(0);
    expect(body.error?.message).toContain("budget_full");
    expect(envelope(await holding)).toMatchObject({ termination: "completed", result: "holder", budget: { outcome: "granted" } });

    const list = await records("s-reject");
    expect(startOf(list, body.runId)).toMatchObject({
      budget: { mode: "reject", outcome: "rejected", reason: "budget_full", queuedMs: 0 },
      task: { jti: expect.any(String) },
    });
    expect(finishOf(list, body.runId)).toMatchObject({ termination: "denied", error: { code: "over_budget" }, latencyMs: { start: null, exec: null } });
    // once the slot is free, the same call runs
    expect(envelope(await b.callTool("slow_reject", { code: SLEEP, input: { ms: 1, tag: "again" } }))).toMatchObject({ result: "again" });
  });

  it("delay: waits in the queue for the slot and runs, with its queue time in the result and the evidence", async () => {
    const [a, b] = [await client("s-delay"), await client("s-delay")];
    const { holding } = await holdSlot(a, 1_500);
    const waited = envelope(await b.callTool("slow_delay", { code: SLEEP, input: { ms: 1, tag: "waited" } }));
    expect(waited).toMatchObject({ termination: "completed", result: "waited", budget: { outcome: "delayed" } });
    expect(waited.budget?.queuedMs).toBeGreaterThan(500);
    await holding;
    const list = await records("s-delay");
    expect(startOf(list, waited.runId)).toMatchObject({ budget: { mode: "delay", outcome: "delayed" } });
    expect(finishOf(list, waited.runId)).toMatchObject({ latencyMs: { queue: waited.budget?.queuedMs } });
  });

  it("delay: gives up after the contract's maximum wait with over_budget (wait_expired)", async () => {
    const [a, b] = [await client("s-hasty"), await client("s-hasty")];
    const { holding } = await holdSlot(a, 1_500);
    const gaveUp = envelope(await b.callTool("slow_hasty", { code: SLEEP, input: { ms: 1, tag: "x" } }));
    expect(gaveUp).toMatchObject({ termination: "denied", error: { code: "over_budget" }, budget: { outcome: "rejected" } });
    expect(gaveUp.error?.message).toContain("wait_expired");
    expect(gaveUp.budget?.queuedMs).toBeGreaterThanOrEqual(90);
    await holding;
  });

  it("downgrade: runs under the cheaper contract, and says so in the result and the evidence", async () => {
    const [a, b] = [await client("s-downgrade"), await client("s-downgrade")];
    const { holding } = await holdSlot(a, 1_500);
    const cheaper = envelope(await b.callTool("heavy", { code: SLEEP, input: { ms: 1, tag: "lite ran" } }));
    expect(cheaper).toMatchObject({
      termination: "completed",
      result: "lite ran",
      budget: { outcome: "downgraded", contract: "lite", downgradedFrom: "heavy" },
    });
    // code too large for the cheaper contract: a clear error, nothing runs
    const tooBig = envelope(await b.callTool("heavy", { code: `${SLEEP}\n// ${"x".repeat(300)}`, input: { ms: 1, tag: "no" } }));
    expect(tooBig).toMatchObject({ termination: "denied", error: { code: "invalid_arguments" } });
    expect(tooBig.error?.message).toContain("downgraded to: ");
    await holding;
    const list = await records("s-downgrade");
    expect(startOf(list, cheaper.runId)).toMatchObject({
      contract: { id: "lite" },
      budget: { mode: "downgrade", outcome: "downgraded", downgradedFrom: { id: "heavy", version: "1.0.0" } },
    });
    expect(finishOf(list, cheaper.runId)).toMatchObject({ contract: { id: "lite" }, termination: "completed" });
  });
});
