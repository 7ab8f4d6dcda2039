// Latency and outcome figures from run samples: nearest-rank percentiles of each phase
// (queue wait, isolate start, execution, total), per lane, per contract and for the lane
// as a whole. Pure; the budget object and the metrics route both use it.

/** Samples older than this are dropped; the metrics window can be at most this long. */
export const SAMPLE_RETENTION_MS = 24 * 60 * 60 * 1000;

export type RunSample = {
  at: number;
  lane: "interactive" | "batch";
  /** The contract asked for. */
  contract: string;
  /** What the budget did with the call. */
  outcome: "granted" | "delayed" | "downgraded" | "rejected";
  /** How the run ended; null when it did not run (rejected). */
  termination: string | null;
  queueMs: number;
  /** Null when no isolate started. */
  startMs: number | null;
  execMs: number | null;
  /** Null when it did not run. */
  totalMs: number | null;
};

export type PhaseStats = { n: number; p50: number | null; p95: number | null; p99: number | null };

export type Figures = {
  runs: { total: number; granted: number; delayed: number; downgraded: number; rejected: number; completed: number };
  queueMs: PhaseStats;
  startMs: PhaseStats;
  execMs: PhaseStats;
  totalMs: PhaseStats;
};

export type LaneSummary = { lane: RunSample["lane"]; all: Figures; contracts: Record<string, Figures> };

/** Nearest-rank percentile (the smallest value with at least q of the samples at or below it). */
export function percentile(sorted: readonly number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? null;
}

export function phaseStats(values: readonly (number | null)[]): PhaseStats {
  const sorted = values.filter((v): v is number => v !== null).sort((a, b) => a - b);
  return { n: sorted.length, p50: percentile(sorted, 0.5), p95: percentile(sorted, 0.95), p99: percentile(sorted, 0.99) };
}

export function figuresOf(samples: readonly RunSample[]): Figures {
  const count = (outcome: RunSample["outcome"]) => samples.filter((s) => s.outcome === outcome).length;
  const ran = samples.filter((s) => s.outcome !== "rejected");
  return {
    runs: {
      total: samples.length,
      granted: count("granted"),
      delayed: count("delayed"),
      downgraded: count("downgraded"),
      rejected: count("rejected"),
      completed: samples.filter((s) => s.termination === "completed").length,
    },
    // queue wait counts every call (a rejected one waited too); the run phases only runs
    queueMs: phaseStats(samples.map((s) => s.queueMs)),
    startMs: phaseStats(ran.map((s) => s.startMs)),
    execMs: phaseStats(ran.map((s) => s.execMs)),
    totalMs: phaseStats(ran.map((s) => s.totalMs)),
  };
}

export function summarize(samples: readonly RunSample[]): LaneSummary[] {
  const lanes = Map.groupBy(samples, (s) => s.lane);
  return [...lanes].map(([lane, inLane]) => ({
    lane,
    all: figuresOf(inLane),
    contracts: Object.fromEntries([...Map.groupBy(inLane, (s) => s.contract)].map(([contract, of]) => [contract, figuresOf(of)])),
  }));
}
