// What a tenant's policy says about its budget and its rollout, owned by the budget that
// enforces them (the policy file embeds these schemas; see src/policy/policy-schema.ts).
import { z } from "zod";

const LaneBudgetSchema = z
  .object({
    maxInFlight: z.int().min(1).max(1_000).describe("Runs of this lane the tenant may have in flight at once."),
    queueMax: z.int().min(0).max(10_000).describe("delay mode: calls that may wait for a slot at once; beyond it they are rejected."),
  })
  .strict();

/** Concurrency per lane; interactive (MCP tools/call, planner tasks) and batch never share a budget or a queue. */
export const BudgetSchema = z
  .object({
    interactive: LaneBudgetSchema.default({ maxInFlight: 8, queueMax: 32 }),
    batch: LaneBudgetSchema.default({ maxInFlight: 4, queueMax: 0 }),
    downgradeInFlight: z
      .int()
      .min(0)
      .max(1_000)
      .default(4)
      .describe("Runs downgraded to a cheaper contract (their own pool, per lane) the tenant may have in flight."),
  })
  .strict();
export type Budget = z.infer<typeof BudgetSchema>;
export const DEFAULT_BUDGET: Budget = BudgetSchema.parse({});

/** A condition, set in advance, under which a rollout phase is switched off for the tenant. */
export const RollbackConditionSchema = z
  .object({
    metric: z.enum(["policy_denied_ratio", "drift_rate", "failure_rate"]).describe("What is measured over the phase's runs in the window."),
    above: z.number().min(0).max(1).describe("The phase rolls back when the figure goes above this."),
    windowMinutes: z.int().min(1).max(1_440).default(10),
    minRuns: z.int().min(1).max(100_000).default(20).describe("Runs the figure needs before it counts (no trip on two runs)."),
  })
  .strict();
export type RollbackCondition = z.infer<typeof RollbackConditionSchema>;

export const RolloutSchema = z
  .partialRecord(z.enum(["1", "2", "3"]), z.object({ rollback: z.array(RollbackConditionSchema).max(16).default([]) }).strict())
  .default({})
  .describe("Per rollout phase, the conditions that roll it back for this tenant.");
export type Rollout = z.infer<typeof RolloutSchema>;
