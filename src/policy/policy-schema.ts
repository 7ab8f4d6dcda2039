// Policy as data: tenants, their roles and teams, what each team may use (contracts,
// data classes, action scope, required roles) and which rollout phases are enabled.
// Declared once here; policy/policy.schema.json is generated from it for editors.
import { z } from "zod";
import { BudgetSchema, DEFAULT_BUDGET, RolloutSchema } from "../budget/index.ts";
import { ActionSchema, DataClassSchema } from "../contracts/index.ts";

const Name = (what: string) => z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, `a ${what}: 1-128 letters, digits and . _ : @ -`);
export const RoleNameSchema = z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, "a role: lowercase letters, digits, _ and -");

export const GrantSchema = z
  .object({
    contract: z.string().min(1).describe("The id of the contract this grant lets the team use."),
    maxDataClass: DataClassSchema.describe("The most sensitive data class the team may send to it."),
    actions: z
      .array(z.union([ActionSchema, z.literal("*")]))
      .min(1)
      .default(["*"])
      .describe('The action scope: which of the contract\'s actions the team may use ("*" for all).'),
    roles: z.array(RoleNameSchema).default([]).describe("Roles the caller must all hold (from the token's roles claim)."),
  })
  .strict();
export type Grant = z.infer<typeof GrantSchema>;

export const TeamSchema = z
  .object({
    description: z.string().max(500).optional(),
    members: z
      .array(z.union([Name("actor"), z.literal("*")]))
      .min(1)
      .describe('Actors (token `sub`) in the team; "*" is every actor of the tenant.'),
    grants: z.array(GrantSchema).default([]),
  })
  .strict();
export type Team = z.infer<typeof TeamSchema>;

export const RolloutPhaseSchema = z.union([z.literal(1), z.literal(2), z.literal(3)]);

export const TenantPolicySchema = z
  .object({
    description: z.string().max(500).optional(),
    roles: z.array(RoleNameSchema).default([]).describe("The roles this tenant uses; grants may only require these."),
    phases: z.array(RolloutPhaseSchema).min(1).default([1]).describe("Enabled rollout phases: 1 read-only, 2 low-risk writes, 3 production with approvals."),
    teams: z.record(Name("team"), TeamSchema),
    budget: BudgetSchema.default(DEFAULT_BUDGET).describe("The tenant's concurrency budget per lane (see docs/budgets-and-lanes.md)."),
    rollout: RolloutSchema,
  })
  .strict();
export type TenantPolicy = z.infer<typeof TenantPolicySchema>;

export const PolicyFileSchema = z
  .object({
    $schema: z.string().optional(),
    tenants: z.record(Name("tenant"), TenantPolicySchema),
  })
  .strict();

/** The JSON Schema editors use for policy files (policy/policy.schema.json). */
export function policyJsonSchema(): Record<string, unknown> {
  return { ...z.toJSONSchema(PolicyFileSchema, { io: "input", target: "draft-2020-12" }), title: "agent-exec policy file" };
}
