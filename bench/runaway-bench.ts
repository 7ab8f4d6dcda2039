// The runaway benchmark (issue 17), one local server, one run:
//   1. tenant B alone: sequential interactive calls, in blocks before and after step 2;
//   2. tenant A runs three busy loops back to back (a 1 s wall clock) while B keeps calling,
//      then one ordinary call: A's recovery, from its last timed_out to that call's answer;
//   repeated ROUNDS times.
// Prints B's p50/p99 during the loops as ratios to B alone, B's failures, A's answers and
// recovery times, and how many runs shared a stalled sandbox process and were cut off with it.
import { dataDirs, readOnlyContract } from "../test/helpers/data-dirs.ts";
import { startLocalServer } from "../test/helpers/local-server.ts";
import { rawToolCall, sessionRecords } from "../test/helpers/mcp-http.ts";
import { stats } from "./stats.ts";

type Envelope = { runId: string; termination: string; error?: { code: string } };

const ROUNDS = Number(process.env.BENCH_RUNAWAY_ROUNDS ?? 3);
const ALONE = Number(process.env.BENCH_RUNAWAY_ALONE ?? 150);
const WALL_MS = 1_000;
const BUSY = "export default () => { while (true) {} }";
const CODE = "export default async (input) => ({ n: input.n + 1 })";
const CUT_OFF = new Set(["runtime_restarted", "runtime_crashed"]);

export async function runawayBench(): Promise<void> {
  const contracts = { quick: readOnlyContract("quick", "quick", { limits: { wallMs: WALL_MS }, backpressure: { mode: "reject" } }) };
  const tenant = {
    phases: [1],
    roles: ["auditor"],
    budget: { interactive: { maxInFlight: 8, queueMax: 0 }, batch: { maxInFlight: 1, queueMax: 0 }, downgradeInFlight: 0 },
    teams: { all: { members: ["*"], grants: [{ contract: "quick", maxDataClass: "internal" }] } },
  };
  const server = await startLocalServer({ env: dataDirs(contracts, { tenants: { "tenant-a": tenant, "tenant-b": tenant } }) });
  try {
    const A = { tenant: "tenant-a", actor: "agent", session: `runaway-a-${Date.now()}`, ttlSeconds: 3600 };
    const B = { tenant: "tenant-b", actor: "human", session: `steady-b-${Date.now()}`, ttlSeconds: 3600 };
    const tokenA = await server.token(A);
    const tokenB = await server.token(B);
    let id = 0;
    const call = async (token: string, code: string): Promise<Envelope & { ms: number; sentAt: number }> => {
      const n = ++id;
      const sentAt = performance.now();
      const envelope = await rawToolCall<Envelope>(server.mcpUrl, token, "quick", { code, input: { n } }, n);
      return { ...envelope, ms: performance.now() - sentAt, sentAt };
    };
    const alone: number[] = [];
    const during: Array<Envelope & { ms: number; sentAt: number }> = [];
    const aOutcomes: string[] = [];
    const recoveries: number[] = [];
    const aCutOff: string[] = [];

    for (let i = 0; i < 30; i++) await call(tokenB, CODE);
    const bAlone = async () => {
      for (let i = 0; i < ALONE; i++) alone.push((await call(tokenB, CODE)).ms);
    };
    for (let round = 0; round < ROUNDS; round++) {
      await bAlone();
      let stop = false;
      const calls: Array<Envelope & { ms: number; sentAt: number }> = [];
      const steady = (async () => {
        while (!stop) calls.push(await call(tokenB, CODE));
      })();
      const loopsStartedAt = performance.now();
      let lastTimedOutAt = 0;
      for (let loop = 0; loop < 3; loop++) {
        const answer = await call(tokenA, BUSY);
        aOutcomes.push(`${answer.termination} in ${answer.ms.toFixed(0)} ms`);
        lastTimedOutAt = performance.now();
      }
      const next = await call(tokenA, CODE);
      recoveries.push(performance.now() - lastTimedOutAt);
      if (next.termination !== "completed") aCutOff.push(`recovery call ${next.termination} (${next.error?.code})`);
      stop = true;
      await steady;
      // B's call in flight when the loops began is not "during"
      during.push(...calls.filter((c) => c.sentAt >= loopsStartedAt));
    }
    await bAlone();

    const b = stats(alone);
    const d = stats(during.map((c) => c.ms));
    const bFailed = during.filter((c) => c.termination !== "completed");
    const cutOff = during.filter((c) => CUT_OFF.has(c.error?.code ?? ""));
    const restarts = server.output().match(/watchdog: run \S+ is past its deadline/g)?.length ?? 0;
    const records = await sessionRecords<{ kind: string; error?: { code: string } }>(server.url, await server.token({ ...B, roles: ["auditor"] }), B.session);
    const bCutOffInEvidence = records.filter((r) => r.kind === "run.finished" && CUT_OFF.has(r.error?.code ?? "")).length;

    const lines = [
      "",
      `runaways (issue 17): tenant A runs three busy loops back to back (wall clock ${WALL_MS} ms), ${ROUNDS} rounds, while tenant B calls without pause`,
      `  sandbox processes: ${(server.output().match(/(\d+) sandbox processes/) ?? [])[1] ?? "?"}; watchdog restarts: ${restarts}`,
      `  B alone            n=${b.n}  p50 ${b.p50.toFixed(2)} ms  p95 ${b.p95.toFixed(2)} ms  p99 ${b.p99.toFixed(2)} ms`,
      `  B during the loops n=${d.n}  p50 ${d.p50.toFixed(2)} ms  p95 ${d.p95.toFixed(2)} ms  p99 ${d.p99.toFixed(2)} ms  max ${Math.max(...during.map((c) => c.ms)).toFixed(0)} ms`,
      `  B during / alone   p50 ${(d.p50 / b.p50).toFixed(2)}x  p99 ${(d.p99 / b.p99).toFixed(2)}x   (goal: p99 within 2x)`,
      `  B failures: ${bFailed.length} of ${during.length}   (goal: 0)${bFailed.length ? ` - ${bFailed.map((c) => `${c.termination}/${c.error?.code}`).join(", ")}` : ""}`,
      `  runs cut off with a runaway's process: B ${cutOff.length} (in B's evidence: ${bCutOffInEvidence}), A's ordinary calls ${aCutOff.length}${aCutOff.length ? ` (${aCutOff.join("; ")})` : ""}`,
      `  A's busy loops: ${aOutcomes.join(", ")}`,
      `  A's recovery (last timed_out -> next call answered): ${recoveries.map((ms) => `${ms.toFixed(0)} ms`).join(", ")}   (goal: < 2000 ms)`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await server.stop();
  }
}
