// What a caller is told about a run, over MCP or HTTP alike: the run id, how it ended,
// the policy that decided, and the result or a typed error, with captured console output.
import type { ErrorBody } from "../errors/index.ts";
import type { LogLine } from "../execution/index.ts";
import type { RunReport } from "./submit-task.ts";

export type RunEnvelope = {
  runId: string;
  termination: string;
  policyHash: string;
  decision: { outcome: string; reasons: string[]; dataClass: string } | null;
  logs: LogLine[];
  logsTruncated: boolean;
  /** Outbound attempts as the ledger recorded them; absent when none were made. */
  egress?: { attempts: number; denied: number; drift: number };
  /** What the tenant's budget did: the lane, whether the call waited, was downgraded (and to what) or refused. */
  budget?: { lane: string; outcome: string; queuedMs: number; contract: string; downgradedFrom?: string };
  result?: unknown;
  error?: ErrorBody;
  stack?: string;
};

export function runEnvelope({ runId, outcome, policyHash, decision, activity, budget, contract }: RunReport): RunEnvelope {
  const envelope: RunEnvelope = {
    runId,
    termination: outcome.termination,
    policyHash,
    decision: decision && { outcome: decision.outcome, reasons: decision.reasons, dataClass: decision.dataClass },
    logs: outcome.logs.lines,
    logsTruncated: outcome.logs.truncated,
    ...(activity && activity.egress.total > 0
      ? { egress: { attempts: activity.egress.total, denied: activity.egress.denied, drift: activity.egress.drift } }
      : {}),
    ...(budget
      ? {
          budget: {
            lane: budget.lane,
            outcome: budget.outcome,
            queuedMs: budget.queuedMs,
            contract: contract.id,
            ...(budget.downgradedFrom ? { downgradedFrom: budget.downgradedFrom.id } : {}),
          },
        }
      : {}),
  };
  if (outcome.termination === "completed" && !outcome.error) return { ...envelope, result: outcome.result ?? null };
  return {
    ...envelope,
    error: outcome.error?.toJSON() ?? { code: "internal_error", message: "The run failed.", hint: "Retry; the run id identifies it in the evidence." },
    ...(outcome.stack ? { stack: outcome.stack } : {}),
  };
}
