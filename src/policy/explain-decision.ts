// Turns a refusal into the error a caller sees: the reason codes, the policy that
// decided, and what to do about the first reason.
import { PlatformError } from "../errors/index.ts";
import type { Decision, DecisionReason } from "./decide.ts";

const HINTS: Record<DecisionReason, string> = {
  tenant_unknown: "Your tenant is not in the policy; ask the platform team to add it.",
  contract_unknown: "This contract is not in the policy in force; list the tools again.",
  actor_not_in_team: "You are in no team of your tenant; ask your tenant's admin to add you to one.",
  contract_not_granted: "No team of yours is granted this contract; use another tool or ask for a grant.",
  role_missing: "The grant for this contract requires a role your token does not carry.",
  data_class_not_allowed: "Your grant does not cover this data class; declare a lower `dataClass` if the data allows, or ask for a wider grant.",
  data_class_above_contract: "This contract may not process data of this class; use a contract rated for it.",
  action_not_granted: "Your grant leaves none of this contract's actions in scope.",
  phase_not_enabled: "This contract's rollout phase is not enabled for your tenant yet.",
  approval_required:
    "This contract runs only with a human approval bound to the exact task: a person with the approver role approves it at the page the error names.",
};

export function refusalError(decision: Decision, policyHash: string, contractId: string): PlatformError {
  const first = decision.reasons[0] ?? "contract_not_granted";
  if (decision.outcome === "needs_approval") {
    return new PlatformError("approval_required", `Contract ${contractId} needs a human approval for every run; nothing was run.`, {
      hint: HINTS.approval_required,
    });
  }
  const roles = decision.rolesMissing?.length ? ` (the grant needs role ${decision.rolesMissing.join(", ")})` : "";
  const hint =
    first === "role_missing" && decision.rolesMissing?.length
      ? `The grant for this contract requires the role${decision.rolesMissing.length > 1 ? "s" : ""} ${decision.rolesMissing.join(", ")}, which your token does not carry; ask for a token with ${decision.rolesMissing.length > 1 ? "them" : "it"}.`
      : HINTS[first];
  return new PlatformError("policy_denied", `Policy ${policyHash.slice(0, 12)} denied this call (${decision.reasons.join(", ")})${roles}; nothing was run.`, {
    hint,
  });
}
