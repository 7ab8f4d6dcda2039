// Finds the ledger of a (tenant, session). The name is the only key, so another
// tenant's token can never reach this session's records.
import type { SessionLedger } from "./session-ledger.ts";

export function ledgerFor(namespace: DurableObjectNamespace<SessionLedger>, tenant: string, session: string): DurableObjectStub<SessionLedger> {
  return namespace.getByName(`tenant:${tenant}/session:${session}`);
}
