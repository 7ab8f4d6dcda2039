// Records a run's egress attempts and capability calls in its session ledger as they
// happen. A failed write is logged, never thrown at the sandboxed code.
import { type Activity, ledgerFor, type SessionLedger } from "../evidence/index.ts";
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
