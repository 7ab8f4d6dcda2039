// Budget: a tenant's concurrency per lane, backpressure when it is full, and the run samples
// the metrics route summarises.

export { acquireSlot, budgetFor, LEASE_GRACE_MS, releaseSlot, type SlotResult } from "./budget-client.ts";
export { type ApprovalDecisionSample, type GovernanceFigures, type GovernanceSample, governanceByTeam, governanceFigures } from "./governance.ts";
export {
  type Figures,
  figuresOf,
  type LaneSummary,
  type PhaseStats,
  percentile,
  phaseStats,
  type RunSample,
  SAMPLE_RETENTION_MS,
  summarize,
} from "./percentiles.ts";
export { DEFAULT_RESERVE_FRESH_MS, SlotReserve, type SlotSample } from "./slot-reserve.ts";
// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only.
export type { BackpressureMode, GovernanceNote, Lane, ReserveAnswer, ReserveReport, SlotOutcome, SlotRequest, TenantBudget } from "./tenant-budget.ts";
