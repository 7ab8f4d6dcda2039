// What the Worker and a tenant's budget object say to each other: slot requests and their
// outcomes, a reserve's reports, and a finished run's governance facts.
import type { Rollout } from "./budget-schema.ts";
import type { GovernanceSample } from "./governance.ts";
import type { RunSample } from "./percentiles.ts";

/** Slots kept by an isolate's reserve are leased under ids with this prefix (a run's own lease is under its run id). */
export const RESERVE_PREFIX = "reserve:";

/** The session in which a tenant's rollout changes are recorded (auditors read it like any other). */
export const GOVERNANCE_SESSION = "governance";

/** A finished run's governance facts, and the rollout conditions in force for its tenant (from its policy snapshot). */
export type GovernanceNote = { sample: GovernanceSample; rollout?: { config: Rollout; policyHash: string; tenant: string } };

export type Lane = "interactive" | "batch";
export type BackpressureMode = "reject" | "delay" | "downgrade";

export type SlotRequest = {
  lane: Lane;
  runId: string;
  /** The contract asked for (a downgraded run still counts under it in the request). */
  contract: string;
  mode: BackpressureMode;
  /** delay: the longest the call may wait for a slot. */
  maxWaitMs: number;
  /** How long the lease lives if it is never released (the run's deadline plus a grace). */
  leaseMs: number;
  /** From the tenant's policy snapshot: the limits that apply to this request. */
  limits: { maxInFlight: number; queueMax: number; downgradeInFlight: number };
  /**
   * The caller isolate's reserve asks to keep the slot after this run, under this id and for
   * this long unless renewed (see slot-reserve.ts). Granted only while the lane is uncontended
   * and has room to spare.
   */
  keep?: { slotId: string; leaseMs: number };
};

export type SlotOutcome = (
  | { outcome: "granted" | "delayed"; pool: "main"; queuedMs: number; inFlight: number }
  | { outcome: "downgraded"; pool: "downgrade"; queuedMs: number; inFlight: number }
  | {
      outcome: "rejected";
      reason: "budget_full" | "queue_full" | "wait_expired" | "downgrade_full";
      retryAfterMs: number;
      queuedMs: number;
      inFlight: number;
    }
) & {
  /** The rollout phases rolled back for this tenant right now (absent: none). */
  rolledBack?: number[];
  /** With `keep`: the slot is leased to the reserve under that id, until `expiresAt` unless renewed. */
  kept?: { slotId: string; expiresAt: number };
  /** Granted by an isolate's reserve from a slot it keeps, without asking the budget (slot-reserve.ts); inFlight then counts that reserve's busy slots. */
  reserved?: true;
  /** With `keep`: whether the lane is contended (waiters, a recent refusal, or no room to spare); a reserve then keeps nothing. */
  contended?: boolean;
};

/** What an isolate's reserve tells the budget about the slots it keeps, and the figures of the runs that used them. */
export type ReserveReport = {
  lane: Lane;
  limits: SlotRequest["limits"];
  /** How long each slot kept lives from now unless renewed again. */
  leaseMs: number;
  /** `busy`: a run holds it now; `used`: a run held it since the last report. */
  slots: Array<{ slotId: string; busy: boolean; used: boolean }>;
  /** Give back every free slot (the reserve is being emptied). */
  giveBack: boolean;
  samples: RunSample[];
  notes: GovernanceNote[];
};

/** The budget's answer: which slots the reserve still holds (with their new expiry), and whether the lane is contended. */
export type ReserveAnswer = { kept: Record<string, number>; contended: boolean; rolledBack: number[] };
