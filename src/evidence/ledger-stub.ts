// Finds the ledger of a (tenant, session). The name is the only key, so another
// tenant's token can never reach this session's records.
import { PlatformError } from "../errors/index.ts";
import { logEvent } from "../log/index.ts";
import type { SessionLedger } from "./session-ledger.ts";

export function ledgerFor(namespace: DurableObjectNamespace<SessionLedger>, tenant: string, session: string): DurableObjectStub<SessionLedger> {
  return namespace.getByName(`tenant:${tenant}/session:${session}`);
}

/**
 * One read of a session's ledger. A ledger whose storage fails (a disk I/O error, a full
 * disk) throws from the object; that is `evidence_unavailable` for this session alone, never
 * an unexplained 500, and nothing else is touched: every session is its own object.
 */
export async function readLedger<T>(session: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    if (error instanceof PlatformError) throw error;
    logEvent("error", { event: "ledger_read_failed", session, error: String(error) });
    throw new PlatformError("evidence_unavailable", `The evidence of session ${session} cannot be read now: its ledger's storage failed.`, {
      hint: "This session's ledger could not read its storage (other sessions are not affected); retry later, and report it if it persists.",
      cause: error,
    });
  }
}
