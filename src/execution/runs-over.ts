// The runs this isolate knows are over: the sandbox host marks a run the moment it has its
// outcome (or gave up on it at the deadline), and the egress gateway, in the same isolate,
// refuses to send anything more of it, even a request the ledger admitted just before (one
// that waited behind thousands of others in a flooded isolate). The ledger's admission stays
// the authority across isolates; this closes the gap between an admission and its dispatch.

const OVER = new Set<string>();
/** Bounded: the oldest are forgotten first (a forgotten run is still refused by its ledger after its finish). */
const OVER_MAX = 10_000;

export function markRunOver(runId: string): void {
  OVER.add(runId);
  if (OVER.size > OVER_MAX) OVER.delete(OVER.values().next().value ?? "");
}

export function isRunOver(runId: string): boolean {
  return OVER.has(runId);
}
