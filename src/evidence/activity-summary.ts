// What a run did beyond its own isolate, summarised for its finish record, and the one
// termination rule that depends on it: a run that failed after one of its egress attempts
// was denied ended egress_denied (the code gave up after the denial).
import type { Activity, ActivitySummary, TerminationReason } from "./evidence-record.ts";

/** How many attempts (and calls) a finish record keeps in full; the totals count them all. */
export const ACTIVITY_KEPT = 100;

export function summarizeActivity(activities: readonly Activity[], admitted: number): ActivitySummary {
  const egress = activities.filter((a) => a.kind === "egress");
  const calls = activities.filter((a) => a.kind === "capability");
  return {
    egress: {
      attempts: egress.slice(0, ACTIVITY_KEPT),
      total: egress.length,
      allowed: egress.filter((a) => a.decision === "allowed").length,
      denied: egress.filter((a) => a.decision === "denied").length,
      drift: egress.filter((a) => a.drift === true).length,
      bytesOut: egress.reduce((sum, a) => sum + a.bytesOut, 0),
      bytesIn: egress.reduce((sum, a) => sum + (a.bytesIn ?? 0), 0),
      truncated: egress.length > ACTIVITY_KEPT,
      admitted,
    },
    capabilities: {
      calls: calls.slice(0, ACTIVITY_KEPT),
      total: calls.length,
      denied: calls.filter((a) => a.decision === "denied").length,
      drift: calls.filter((a) => a.drift === true).length,
      truncated: calls.length > ACTIVITY_KEPT,
    },
  };
}

export function finalTermination(termination: TerminationReason, summary: ActivitySummary): TerminationReason {
  return termination === "failed" && summary.egress.denied > 0 ? "egress_denied" : termination;
}
