// A run's budget slot as the run path sees it: what evidence records of it, and giving it
// back once, with the run's figures and governance facts, to wherever it came from (the
// isolate's reserve knows its own slots; any other goes to the tenant's budget).
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { BudgetRecord, TerminationReason } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import type { SlotResult } from "./budget-client.ts";
import type { SlotReserve } from "./slot-reserve.ts";
import type { GovernanceNote, Lane } from "./slot-types.ts";

/** What the budget did with the call, as the run's start record keeps it (undefined: it was never asked). */
export function budgetRecord(slot: SlotResult | null, lane: Lane, asked: Contract, ran: Contract): BudgetRecord | undefined {
  if (!slot?.slot) return undefined;
  const { slot: granted } = slot;
  return {
    lane,
    // batch work waits in the queue, whatever the contract's interactive mode
    mode: lane === "batch" ? "delay" : asked.backpressure.mode,
    outcome: granted.outcome,
    queuedMs: granted.queuedMs,
    inFlight: granted.inFlight,
    ...(granted.reserved ? { reserved: true as const } : {}),
    ...(granted.outcome === "rejected" ? { reason: granted.reason, retryAfterMs: granted.retryAfterMs } : {}),
    ...(ran !== asked ? { downgradedFrom: { id: asked.id, version: asked.version } } : {}),
  };
}

/** The rollout phase of `contract`, if the budget says it is rolled back for the tenant: then nothing runs. */
export function rolledBackRefusal(slot: SlotResult | null, contract: Contract, tenant: string): PlatformError | undefined {
  if (!(slot?.slot?.rolledBack ?? []).includes(contract.phase)) return undefined;
  return new PlatformError(
    "phase_rolled_back",
    `Rollout phase ${contract.phase} (contract ${contract.id}) is rolled back for tenant ${tenant}; nothing was run.`,
  );
}

/** What a run tells its budget as it ends. */
export type RunEnd = {
  tenant: string;
  runId: string;
  receivedAt: number;
  termination: TerminationReason;
  latencyMs: { start: number | null; exec: number | null };
  note?: GovernanceNote;
  waitUntil?: (promise: Promise<unknown>) => void;
};

/**
 * Gives a held slot back with the run's figures and governance facts; a run that held none
 * sends the facts alone, after the answer when the request can wait for it. Never throws.
 */
export async function endRun(leases: SlotReserve, slot: SlotResult | null, end: RunEnd): Promise<void> {
  if (slot?.ok) {
    const sample = {
      at: Date.now(),
      outcome: slot.slot.outcome,
      termination: end.termination,
      queueMs: slot.slot.queuedMs,
      startMs: end.latencyMs.start,
      execMs: end.latencyMs.exec,
      totalMs: Date.now() - end.receivedAt,
    };
    await leases.release(end.tenant, end.runId, sample, end.note, end.waitUntil);
    return;
  }
  if (!end.note) return;
  const noted = leases.noteRun(end.tenant, end.note).catch((error: unknown) => {
    logEvent("error", { event: "governance_note_failed", tenant: end.tenant, runId: end.runId, error: String(error) });
  });
  if (end.waitUntil) end.waitUntil(noted);
  else await noted;
}
