// Records a run's egress attempts and capability calls in its session ledger as they
// happen, and asks it to admit each outbound request. A failed write is logged, never
// thrown at the sandboxed code.
import { type Activity, type EgressActivity, type EgressAdmission, ledgerFor, type SessionLedger } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import type { RunContext } from "./runtime-profile.ts";

export async function recordActivity(ledgers: DurableObjectNamespace<SessionLedger>, run: RunContext, activity: Activity): Promise<void> {
  try {
    const result = await ledgerFor(ledgers, run.tenant, run.session).recordActivity(run.runId, activity);
    if (!result.ok) logEvent("error", { event: "activity_refused", runId: run.runId, detail: result.detail });
  } catch (error) {
    logEvent("error", { event: "activity_write_failed", runId: run.runId, error: String(error) });
  }
}

/**
 * Asks the run's ledger to admit one outbound request (see SessionLedger.admitEgress). A
 * ledger that cannot be reached admits nothing: the request does not leave unrecorded.
 */
export async function admitEgress(
  ledgers: DurableObjectNamespace<SessionLedger>,
  run: RunContext,
  limit: number,
  attempt: EgressActivity,
): Promise<EgressAdmission | { ok: false; reason: "ledger_unreachable" }> {
  try {
    return await ledgerFor(ledgers, run.tenant, run.session).admitEgress(run.runId, limit, attempt);
  } catch (error) {
    logEvent("error", { event: "egress_admission_failed", runId: run.runId, error: String(error) });
    return { ok: false, reason: "ledger_unreachable" };
  }
}
