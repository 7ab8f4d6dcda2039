// Budget: a tenant's leases of run slots per lane (backpressure when a lane is full), the
// isolate's reserve in front of them, and the tenant's governance figures and rollout.

export { budgetFor, type SlotResult } from "./budget-client.ts";
export { type Budget, BudgetSchema, DEFAULT_BUDGET, RolloutSchema } from "./budget-schema.ts";
export { type GovernanceFigures, type GovernanceSample, governanceByTeam } from "./governance.ts";
export { type Figures, figuresOf, type LaneSummary, type RunSample, SAMPLE_RETENTION_MS } from "./percentiles.ts";
export { budgetRecord, endRun, rolledBackRefusal } from "./run-lease.ts";
export { SlotReserve } from "./slot-reserve.ts";
export type { GovernanceNote, Lane, SlotRequest } from "./slot-types.ts";
// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only.
export type { TenantBudget } from "./tenant-budget.ts";
