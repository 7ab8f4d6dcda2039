// A burst, smaller than the benchmark's: tenant A fires 60 interactive calls at once at a
// budget of 4 (delay mode, 8 waiting at most) plus a 40-task batch, while tenant B makes
// its calls one after another. Every call gets a result or a clear over_budget error, every
// call is in the evidence exactly once, and B is never refused.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { rawToolCall, sessionRecords } from "../helpers/mcp-http.ts";

let server: LocalServer;
const A = { tenant: "tenant-a", actor: "cron", session: "s-burst" };
const B = { tenant: "tenant-b", actor: "human", session: "s-steady" };

beforeAll(async () => {
  const probe = readOnlyContract("burst-probe", "burst_probe", { limits: { wallMs: 5_000 }, backpressure: { mode: "delay", maxWaitMs: 300 } });
  const tenant = (interactive: number) => ({
    phases: [1],
    roles: ["auditor"],
    budget: { interactive: { maxInFlight: interactive, queueMax: 8 }, batch: { maxInFlight: 2, queueMax: 0 }, downgradeInFlight: 0 },
    teams: { all: { members: ["*"], grants: [{ contract: "burst-probe", maxDataClass: "internal" }] } },
  });
  server = await startLocalServer({ env: dataDirs({ "burst-probe": probe }, { tenants: { "tenant-a": tenant(4), "tenant-b": tenant(4) } }) });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

const SLEEP = "export default (i) => new Promise((r) => setTimeout(() => r(i.ms), i.ms))";
const call = (token: string, id: number, ms: number) => rawToolCall<Envelope>(server.mcpUrl, token, "burst_probe", { code: SLEEP, input: { ms } }, id);
type EvidenceRecord = { kind: string; runId: string; budget?: { outcome: string }; termination?: string };
const evidence = async (who: typeof A) => await sessionRecords<EvidenceRecord>(server.url, await server.token({ ...who, roles: ["auditor"] }), who.session);

type Envelope = { runId: string; termination: string; error?: { code: string; retryAfterMs?: number }; budget?: { outcome: string } };

describe("a burst from one tenant", () => {
  it("answers every call with a result or over_budget, loses no evidence, and never refuses the steady tenant", async () => {
    const tokenA = await server.token(A);
    const tokenB = await server.token(B);
    const batch = await fetch(`${server.url}/v1/batches`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokenA}`, "content-type": "application/json" },
      body: JSON.stringify({ tasks: Array.from({ length: 40 }, () => ({ contract: "burst_probe", code: "export default () => 1" })) }),
    });
    expect(batch.status).toBe(202);
    const batchId = ((await batch.json()) as { batchId: string }).batchId;

    const burst = Promise.all(Array.from({ length: 60 }, (_, i) => call(tokenA, i, 150)));
    const steady: Envelope[] = [];
    for (let i = 0; i < 10; i++) steady.push(await call(tokenB, 1_000 + i, 5));
    const answers = await burst;

    // every interactive call of A: completed, or a clear over_budget refusal with a retry hint
    for (const answer of answers) {
      if (answer.termination === "completed") expect(["granted", "delayed"]).toContain(answer.budget?.outcome);
      else
        expect(answer).toMatchObject({
          termination: "denied",
          error: { code: "over_budget", retryAfterMs: expect.any(Number) },
          budget: { outcome: "rejected" },
        });
    }
    const outcomes = Map.groupBy(answers, (a) => a.budget?.outcome ?? "?");
    expect(outcomes.get("granted")?.length ?? 0).toBeGreaterThanOrEqual(4);
    expect(outcomes.get("rejected")?.length ?? 0).toBeGreaterThan(0);
    // B was never refused
    expect(steady.every((s) => s.termination === "completed")).toBe(true);

    // the batch finished too, every task accounted for
    const view = await until(
      "the burst's batch",
      async () => {
        const response = await fetch(`${server.url}/v1/batches/${batchId}`, { headers: { authorization: `Bearer ${tokenA}` } });
        const body = (await response.json()) as { counts: { done: number }; terminations: Record<string, number> };
        return body.counts.done === 40 ? body : undefined;
      },
      60_000,
    );
    expect(view.terminations).toEqual({ completed: 40 });

    // evidence: every call of A (interactive and batch) exactly once, each with a start and a finish
    const records = await evidence(A);
    const runs = Map.groupBy(records, (r) => r.runId);
    expect(runs.size).toBe(60 + 40);
    expect([...runs.values()].every((r) => r.length === 2 && r[0]?.kind === "run.started" && r[1]?.kind === "run.finished")).toBe(true);
    for (const answer of answers) expect(runs.get(answer.runId)?.[0]?.budget?.outcome).toBe(answer.budget?.outcome);
    expect((await evidence(B)).length).toBe(20);
  });
});
