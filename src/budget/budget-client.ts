// The Worker's side of the budget: which object holds a tenant's budget, and a slot request
// that never throws (an unreachable budget means nothing runs: budget_unavailable).
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { logEvent } from "../log/index.ts";
import type { Budget } from "./budget-schema.ts";
import type { GovernanceNote, Lane, SlotOutcome, SlotRequest } from "./slot-types.ts";
import type { TenantBudget } from "./tenant-budget.ts";

/** A lease outlives its run's deadline by this much before the budget takes the slot back. */
export const LEASE_GRACE_MS = 10_000;

export function budgetFor(namespace: DurableObjectNamespace<TenantBudget>, tenant: string): DurableObjectStub<TenantBudget> {
  return namespace.getByName(`tenant:${tenant}`);
}

export type SlotResult = { ok: true; slot: Exclude<SlotOutcome, { outcome: "rejected" }> } | { ok: false; error: PlatformError; slot: SlotOutcome | null };

/** Asks the tenant's budget for a slot for one run of `contract` on `lane`, under `budget` (from the policy snapshot). */
export async function acquireSlot(
  namespace: DurableObjectNamespace<TenantBudget>,
  tenant: string,
  runId: string,
  contract: Contract,
  lane: Lane,
  budget: Budget,
  deadlineMs: number,
  keep?: SlotRequest["keep"],
): Promise<SlotResult> {
  const { mode, maxWaitMs } = contract.backpressure;
  let slot: SlotOutcome;
  try {
    slot = await budgetFor(namespace, tenant).acquire({
      lane,
      runId,
      contract: contract.id,
      mode,
      maxWaitMs,
      leaseMs: deadlineMs + LEASE_GRACE_MS,
      limits: { maxInFlight: budget[lane].maxInFlight, queueMax: budget[lane].queueMax, downgradeInFlight: budget.downgradeInFlight },
      ...(keep === undefined ? {} : { keep }),
    });
  } catch (error) {
    logEvent("error", { event: "budget_unavailable", tenant, runId, error: String(error) });
    return {
      ok: false,
      slot: null,
      error: new PlatformError("budget_unavailable", "The tenant's budget could not be consulted, so nothing ran.", { cause: error }),
    };
  }
  if (slot.outcome !== "rejected") return { ok: true, slot };
  const why = {
    budget_full: `all ${budget[lane].maxInFlight} ${lane} slots are in use`,
    queue_full: `all ${budget[lane].maxInFlight} ${lane} slots are in use and ${budget[lane].queueMax} calls are already waiting`,
    wait_expired: `no ${lane} slot freed within ${maxWaitMs} ms`,
    downgrade_full: `all ${budget[lane].maxInFlight} ${lane} slots and all ${budget.downgradeInFlight} downgrade slots are in use`,
  }[slot.reason];
  return {
    ok: false,
    slot,
    error: new PlatformError("over_budget", `Tenant ${tenant} is over its concurrency budget (${slot.reason}: ${why}); nothing ran.`, {
      retryAfterMs: slot.retryAfterMs,
    }),
  };
}

/** Gives the slot back with the run's figures; failures are logged (the lease expires on its own). */
export async function releaseSlot(
  namespace: DurableObjectNamespace<TenantBudget>,
  tenant: string,
  runId: string,
  sample: Parameters<TenantBudget["release"]>[1],
  note?: GovernanceNote,
): Promise<void> {
  try {
    await budgetFor(namespace, tenant).release(runId, sample, note);
  } catch (error) {
    logEvent("error", { event: "budget_release_failed", tenant, runId, error: String(error) });
  }
}
