// Decides whether a task may run. Pure: no I/O, no clock, no randomness.
// Today it knows one rule, the human gate on contracts that require approval;
// tenant grants, data classes and policy snapshots extend it (see the policy issue).
import type { Contract } from "../contracts/index.ts";
import type { Decision } from "../evidence/index.ts";

export type DecisionInput = { contract: Pick<Contract, "approval" | "class"> };

export function decide(input: DecisionInput): Decision {
  if (input.contract.approval.required) return { outcome: "needs_approval", reasons: ["approval_required"] };
  return { outcome: "allow", reasons: [] };
}
