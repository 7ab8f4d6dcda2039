// The bursty-load benchmark (issue 5), one local server, one run:
//   1. baseline: the bare LOADER.load() + RPC call, 200 times;
//   2. tenant B alone: 200 sequential interactive calls, p50/p95/p99;
//      (1 and 2 interleaved in rounds of 50, as in the main bench, so drift hits both);
//   3a. tenant A bursts 1,000 interactive calls (100 in flight from the client, over three
//       contracts: reject, delay, downgrade) while B repeats step 2;
//   3b. tenant A submits a 1,000-task batch while B repeats step 2.
// Prints B's p95/p99 as ratios to step 2, A's accepted/delayed/downgraded/rejected counts,
// the evidence records against the calls made, and the platform's p50 over the baseline.
import { dataDirs, readOnlyContract } from "../test/helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../test/helpers/local-server.ts";
import { rawToolCall, sessionRecords } from "../test/helpers/mcp-http.ts";
import { stats } from "./stats.ts";

type Envelope = { runId: string; termination: string; error?: { code: string }; budget?: { outcome: string } };

const CALLS = Number(process.env.BENCH_BURST_CALLS ?? 1_000);
const STEADY = Number(process.env.BENCH_STEADY_CALLS ?? 200);
const CLIENT_CONCURRENCY = 100;
/** Baseline and B-alone calls per round of steps 1 and 2. */
const ROUND = 50;
const CODE = "export default async (input) => ({ n: input.n + 1 })";

const contract = (id: string, tool: string, backpressure: object, limits: object = { wallMs: 5_000 }) => readOnlyContract(id, tool, { limits, backpressure });

export async function burstBench(): Promise<void> {
  const contracts = {
    "burst-reject": contract("burst-reject", "burst_reject", { mode: "reject" }),
    "burst-delay": contract("burst-delay", "burst_delay", { mode: "delay", maxWaitMs: 2_000 }),
    "burst-downgrade": contract("burst-downgrade", "burst_downgrade", { mode: "downgrade", downgradeTo: "burst-lite" }),
    "burst-lite": contract("burst-lite", "burst_lite", { mode: "reject" }, { wallMs: 1_000, outputBytes: 4_096 }),
    steady: contract("steady", "steady", { mode: "reject" }),
  };
  const grants = Object.keys(contracts).map((id) => ({ contract: id, maxDataClass: "internal" }));
  const tenant = {
    phases: [1],
    roles: ["auditor"],
    budget: { interactive: { maxInFlight: 8, queueMax: 32 }, batch: { maxInFlight: 4, queueMax: 0 }, downgradeInFlight: 4 },
    teams: { all: { members: ["*"], grants } },
  };
  const server = await startLocalServer({ env: { ...dataDirs(contracts, { tenants: { "tenant-a": tenant, "tenant-b": tenant } }), LOCAL_BENCH: "1" } });
  try {
    const A = { tenant: "tenant-a", actor: "cron", session: `burst-a-${Date.now()}`, ttlSeconds: 3600 };
    const B = { tenant: "tenant-b", actor: "human", session: `steady-b-${Date.now()}`, ttlSeconds: 3600 };
    const tokenA = await server.token(A);
    const tokenB = await server.token(B);
    let id = 0;
    // A call whose connection wrangler's dev proxy dropped (it retries only GET and HEAD) is
    // counted, not fatal: its run may or may not have happened, and its evidence says which.
    let lostA = 0;
    let lostB = 0;
    const call = async (token: string, tool: string) => {
      const n = ++id;
      try {
        return await rawToolCall<Envelope>(server.mcpUrl, token, tool, { code: CODE, input: { n } }, n);
      } catch (error) {
        if (token === tokenA) lostA++;
        else lostB++;
        return { runId: "", termination: "connection_lost", error: { code: String(error).slice(0, 200) } } satisfies Envelope;
      }
    };
    const countRecords = async (who: { tenant: string; actor: string; session: string }) =>
      (await sessionRecords(server.url, await server.token({ ...who, roles: ["auditor"] }), who.session)).length;

    // 1. baseline, and warm-up of every path
    for (let i = 0; i < 30; i++) {
      await baseline(server, i);
      await call(tokenB, "steady");
      await call(tokenA, "burst_reject");
    }
    const failedB: string[] = [];
    const slowB: Array<{ ms: number; runId: string }> = [];
    const steadyB = async (calls = STEADY) => {
      const samples: number[] = [];
      for (let i = 0; i < calls; i++) {
        const started = performance.now();
        const answer = await call(tokenB, "steady");
        samples.push(performance.now() - started);
        slowB.push({ ms: performance.now() - started, runId: answer.runId });
        if (answer.termination !== "completed") failedB.push(`${answer.termination}: ${JSON.stringify(answer.error)}`);
      }
      return samples;
    };

    // 1. and 2. B alone, in rounds with the baseline
    const bare: number[] = [];
    const aloneSamples: number[] = [];
    for (let done = 0; done < STEADY; done += ROUND) {
      const calls = Math.min(ROUND, STEADY - done);
      for (let i = 0; i < calls; i++) bare.push(await timed(() => baseline(server, done + i)));
      aloneSamples.push(...(await steadyB(calls)));
    }
    const alone = stats(aloneSamples);

    // 3a. A's interactive burst while B repeats
    const tools = (process.env.BENCH_BURST_TOOLS ?? "burst_reject,burst_delay,burst_downgrade").split(",");
    const burstStarted = performance.now();
    const burst = pool(CALLS, CLIENT_CONCURRENCY, (i) => call(tokenA, tools[i % tools.length] ?? "burst_reject"));
    const duringSamples = await steadyB();
    const duringInteractive = stats(duringSamples);
    if (process.env.BENCH_DEBUG) {
      // B's slowest calls, with the server's phases from their finish records (queue, start, exec, total)
      const records = (await sessionRecords(server.url, await server.token({ ...B, roles: ["auditor"] }), B.session)) as Array<{
        kind: string;
        runId: string;
        latencyMs?: unknown;
      }>;
      const slowest = [...slowB].sort((a, b) => b.ms - a.ms).slice(0, 8);
      for (const call of slowest) {
        const finished = records.find((r) => r.kind === "run.finished" && r.runId === call.runId);
        console.log(`slow B call: ${call.ms.toFixed(0)} ms at the client; server ${JSON.stringify(finished?.latencyMs ?? null)}`);
      }
    }
    const answers = await burst;
    const burstMs = performance.now() - burstStarted;

    // 3b. A's batch while B repeats
    const batchStarted = performance.now();
    const submitted = await fetch(`${server.url}/v1/batches`, {
      method: "POST",
      headers: { authorization: `Bearer ${tokenA}`, "content-type": "application/json" },
      body: JSON.stringify({ tasks: Array.from({ length: CALLS }, (_, n) => ({ contract: "burst_reject", code: CODE, input: { n } })) }),
    });
    if (submitted.status !== 202) throw new Error(`batch refused: ${submitted.status} ${await submitted.text()}`);
    const batchId = ((await submitted.json()) as { batchId: string }).batchId;
    const duringBatch = stats(await steadyB());
    const batch = await until(
      "the burst batch",
      async () => {
        const view = (await (await fetch(`${server.url}/v1/batches/${batchId}?limit=1`, { headers: { authorization: `Bearer ${tokenA}` } })).json()) as {
          counts: { done: number };
          terminations: Record<string, number>;
        };
        return view.counts.done === CALLS ? view : undefined;
      },
      600_000,
    );
    const batchMs = performance.now() - batchStarted;

    const warmups = 30;
    const recordsA = await countRecords(A);
    const recordsB = await countRecords(B);
    const callsA = warmups + CALLS + CALLS;
    const callsB = warmups + 3 * STEADY;
    const count = (outcome: string) => answers.filter((a) => a.budget?.outcome === outcome).length;
    const base = stats(bare);
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    const lines = [
      "",
      `bursty load: tenant A ${CALLS} calls (interactive burst over reject/delay/downgrade contracts, ${CLIENT_CONCURRENCY} in flight from the client; then a ${CALLS}-task batch), tenant B ${STEADY} sequential calls each time; budgets per tenant: interactive 8 in flight (32 waiting), batch 4, downgrade 4`,
      `  1. baseline, bare LOADER.load() + RPC        p50 ${ms(base.p50)}  p95 ${ms(base.p95)}  p99 ${ms(base.p99)}`,
      `  2. B alone                                   p50 ${ms(alone.p50)}  p95 ${ms(alone.p95)}  p99 ${ms(alone.p99)}`,
      `  3a. B during A's interactive burst          p50 ${ms(duringInteractive.p50)}  p95 ${ms(duringInteractive.p95)} (${(duringInteractive.p95 / alone.p95).toFixed(2)}x)  p99 ${ms(duringInteractive.p99)} (${(duringInteractive.p99 / alone.p99).toFixed(2)}x)`,
      `  3b. B during A's batch                      p50 ${ms(duringBatch.p50)}  p95 ${ms(duringBatch.p95)} (${(duringBatch.p95 / alone.p95).toFixed(2)}x)  p99 ${ms(duringBatch.p99)} (${(duringBatch.p99 / alone.p99).toFixed(2)}x)`,
      `  A's interactive burst (${(burstMs / 1000).toFixed(1)} s): accepted ${count("granted")}, delayed ${count("delayed")}, downgraded ${count("downgraded")}, rejected ${count("rejected")} (other answers: ${answers.filter((a) => !a.budget).length})`,
      `  A's batch (${(batchMs / 1000).toFixed(1)} s): ${JSON.stringify(batch.terminations)}`,
      `  connections dropped by wrangler's dev proxy: A ${lostA}, B ${lostB}; B's calls that did not complete: ${failedB.length}${failedB.length > 0 ? ` (${failedB.slice(0, 3).join("; ")})` : ""}`,
      `  evidence: A ${recordsA} records for ${callsA} calls (${evidenceOf(recordsA, callsA, lostA)}); B ${recordsB} records for ${callsB} calls (${evidenceOf(recordsB, callsB, lostB)})`,
      `  goals: B p99 within 2x of alone: interactive burst ${duringInteractive.p99 <= 2 * alone.p99 ? "met" : "NOT met"}, batch ${duringBatch.p99 <= 2 * alone.p99 ? "met" : "NOT met"}; platform p50 (B alone) ${(alone.p50 / base.p50).toFixed(2)}x the bare baseline (${alone.p50 <= 1.5 * base.p50 ? "met" : "NOT met"} <= 1.5x)`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await server.stop();
  }
}

/** Two records per answered call; a call whose connection was dropped has two (it ran) or none (it never reached the Worker). */
function evidenceOf(records: number, calls: number, lost: number): string {
  if (records === 2 * calls) return "2 per call, none lost";
  return records % 2 === 0 && records >= 2 * (calls - lost)
    ? `2 per call that reached the Worker (${calls - records / 2} of the dropped did not), none lost`
    : "MISMATCH";
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

async function baseline(server: LocalServer, n: number): Promise<void> {
  const response = await fetch(`${server.url}/__bench/baseline`, { method: "POST", body: JSON.stringify({ code: CODE, input: { n } }) });
  if (!response.ok) throw new Error(`baseline answered ${response.status}`);
  await response.arrayBuffer();
}

/** Runs `n` jobs with at most `width` in flight; results in job order. */
async function pool<T>(n: number, width: number, job: (i: number) => Promise<T>): Promise<T[]> {
  const results: T[] = new Array(n);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(width, n) }, async () => {
      while (next < n) {
        const i = next++;
        results[i] = await job(i);
      }
    }),
  );
  return results;
}
