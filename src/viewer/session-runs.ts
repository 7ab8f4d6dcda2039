// What the evidence viewer shows, computed from a bundle's records alone: one entry per
// run (its start, its finish if any), in the order the runs started, and the filters over
// them. Pure, so the Worker's tests and the browser page use the same code.
// The record module directly, not the layer index: the browser bundle must not reach the Durable Object.
import type { ActivitySummary, RecordedDecision, RunFinished, RunStarted } from "../evidence/evidence-record.ts";

/** A record as a bundle carries it: the entry plus its place in the chain. */
type Chained<T> = T & { seq: number; at: string; prevHash: string; hash: string };

/** A run with no finish record yet: still running, or cut off and not reconciled yet. */
export const UNFINISHED = "unfinished";

export type SessionRun = {
  runId: string;
  startedAt: string;
  startSeq: number;
  finishSeq: number | null;
  actor: string;
  roles: string[];
  tenant: string;
  contract: { id: string; version: string; class: string };
  decision: RecordedDecision | null;
  policyHash: string;
  intent: string;
  plan: string[] | null;
  /** The finish's termination, or UNFINISHED. */
  termination: string;
  error: { code: string; message: string } | null;
  latencyMs: { start: number | null; exec: number | null; total: number } | null;
  activity: ActivitySummary | null;
  reconciledBy: string | null;
  late: boolean;
};

export type RunFilter = { termination?: string; contract?: string };

type AnyRecord = { kind: string; runId: string; seq: number };

/**
 * Pairs every start with its finish. A finish without a start (only possible in an edited
 * bundle, which the verifier names) is left out; a second finish (a late one, after the
 * alarm closed the run) marks the run `late` but keeps the first outcome, as the ledger does.
 */
export function runsOf(records: readonly unknown[]): SessionRun[] {
  const runs = new Map<string, SessionRun>();
  for (const raw of records) {
    const record = raw as AnyRecord;
    if (record.kind === "run.started") {
      const start = raw as Chained<RunStarted>;
      if (runs.has(start.runId)) continue;
      runs.set(start.runId, {
        runId: start.runId,
        startedAt: start.at,
        startSeq: start.seq,
        finishSeq: null,
        actor: start.actor,
        roles: Array.isArray(start.roles) ? start.roles : [],
        tenant: start.tenant,
        contract: start.contract,
        decision: start.decision ?? null,
        policyHash: start.policyHash,
        intent:
          (start.intent?.source === "planner" ? `planner ${start.intent.planner ?? "?"} (${start.intent.verdict})` : (start.intent?.source ?? "mcp")) +
          (start.batch ? ` · batch ${start.batch.id} #${start.batch.index}` : ""),
        plan: start.plan?.destinations ?? null,
        termination: UNFINISHED,
        error: null,
        latencyMs: null,
        activity: null,
        reconciledBy: null,
        late: false,
      });
    } else if (record.kind === "run.finished") {
      const finish = raw as Chained<RunFinished>;
      const run = runs.get(finish.runId);
      if (!run) continue;
      if (run.finishSeq !== null) {
        run.late = true;
        continue;
      }
      run.finishSeq = finish.seq;
      run.termination = finish.termination;
      run.error = finish.error ?? null;
      run.latencyMs = finish.latencyMs ?? null;
      run.activity = finish.activity ?? null;
      run.reconciledBy = finish.reconciledBy ?? null;
      run.late = finish.late === true;
    }
  }
  return [...runs.values()];
}

export function filterRuns(runs: readonly SessionRun[], filter: RunFilter): SessionRun[] {
  return runs.filter((run) => (!filter.termination || run.termination === filter.termination) && (!filter.contract || run.contract.id === filter.contract));
}

/** The values a filter can take, each with how many runs have it, most frequent first. */
export function facets(runs: readonly SessionRun[]): { terminations: Array<[string, number]>; contracts: Array<[string, number]> } {
  const count = (values: string[]) => [...Map.groupBy(values, (v) => v)].map(([value, all]) => [value, all.length] as [string, number]).sort(byCount);
  return { terminations: count(runs.map((r) => r.termination)), contracts: count(runs.map((r) => r.contract.id)) };
}

function byCount(a: [string, number], b: [string, number]): number {
  return b[1] - a[1] || a[0].localeCompare(b[0]);
}
