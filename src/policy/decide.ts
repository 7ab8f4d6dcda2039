// Decides whether a task may run: a pure function of (request, snapshot). No I/O,
// no clock, no randomness, so any recorded decision can be replayed from its snapshot.
import { type Contract, type DataClass, dataClassRank } from "../contracts/index.ts";
import type { Grant } from "./policy-schema.ts";
import type { PolicySnapshot } from "./snapshot.ts";

/** Why a task was not allowed. Stable: clients, evidence and metrics key on them. */
export const DENY_REASONS = [
  "tenant_unknown",
  "contract_unknown",
  "actor_not_in_team",
  "contract_not_granted",
  "role_missing",
  "data_class_not_allowed",
  "data_class_above_contract",
  "action_not_granted",
  "phase_not_enabled",
] as const;
export type DenyReason = (typeof DENY_REASONS)[number];
export type DecisionReason = DenyReason | "approval_required";

export type DecisionRequest = {
  tenant: string;
  actor: string;
  roles: readonly string[];
  contractId: string;
  /** What the caller declared its input to be; null means "not declared". */
  dataClass: DataClass | null;
};

export type Decision = {
  outcome: "allow" | "deny" | "needs_approval";
  reasons: DecisionReason[];
  /** The class the task runs under: the declared one, else the contract's default (never "public" by omission). */
  dataClass: DataClass;
  /** The team whose grant allowed it, if one did. */
  team: string | null;
  /** The actions the task may take: the contract's actions within the grant's scope. */
  scope: string[];
  /** With `role_missing`: the roles a grant of the contract needs that the token does not carry. */
  rolesMissing?: string[];
};

export function decide(request: DecisionRequest, snapshot: PolicySnapshot): Decision {
  const contract = snapshot.contracts.find((c) => c.id === request.contractId);
  if (!contract) return deny(["contract_unknown"], request.dataClass ?? "restricted");
  const dataClass = request.dataClass ?? contract.dataClass.default;

  const blocking: DenyReason[] = [];
  if (dataClassRank(dataClass) > dataClassRank(contract.dataClass.max)) blocking.push("data_class_above_contract");
  const policy = snapshot.policy;
  // A snapshot is one tenant's; applied to another tenant's request it grants nothing.
  if (!policy || snapshot.tenant !== request.tenant) return deny(["tenant_unknown", ...blocking], dataClass);
  if (!policy.phases.includes(contract.phase)) blocking.push("phase_not_enabled");

  const teams = Object.entries(policy.teams)
    .filter(([, team]) => team.members.includes("*") || team.members.includes(request.actor))
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  if (teams.length === 0) return deny(["actor_not_in_team", ...blocking], dataClass);

  const candidates = teams.flatMap(([name, team]) => team.grants.filter((g) => g.contract === contract.id).map((grant) => ({ team: name, grant })));
  if (candidates.length === 0) return deny(["contract_not_granted", ...blocking], dataClass);

  const refusals = new Set<DenyReason>();
  const rolesMissing = new Set<string>();
  for (const { team, grant } of candidates) {
    const reasons = grantReasons(grant, contract, request.roles, dataClass);
    for (const role of grant.roles) if (!request.roles.includes(role)) rolesMissing.add(role);
    if (reasons.length === 0) {
      if (blocking.length > 0) return deny(blocking, dataClass);
      const scope = scopeOf(grant, contract);
      if (contract.approval.required) return { outcome: "needs_approval", reasons: ["approval_required"], dataClass, team, scope };
      return { outcome: "allow", reasons: [], dataClass, team, scope };
    }
    for (const reason of reasons) refusals.add(reason);
  }
  const denied = deny([...refusals, ...blocking], dataClass);
  return refusals.has("role_missing") ? { ...denied, rolesMissing: [...rolesMissing].sort() } : denied;
}

function grantReasons(grant: Grant, contract: Contract, roles: readonly string[], dataClass: DataClass): DenyReason[] {
  const reasons: DenyReason[] = [];
  if (!grant.roles.every((role) => roles.includes(role))) reasons.push("role_missing");
  if (dataClassRank(dataClass) > dataClassRank(grant.maxDataClass)) reasons.push("data_class_not_allowed");
  if (contract.actions.length > 0 && scopeOf(grant, contract).length === 0) reasons.push("action_not_granted");
  return reasons;
}

function scopeOf(grant: Grant, contract: Contract): string[] {
  return grant.actions.includes("*") ? [...contract.actions] : contract.actions.filter((action) => grant.actions.includes(action));
}

function deny(reasons: DenyReason[], dataClass: DataClass): Decision {
  const unique = [...new Set(reasons)].sort((a, b) => DENY_REASONS.indexOf(a) - DENY_REASONS.indexOf(b));
  return { outcome: "deny", reasons: unique, dataClass, team: null, scope: [] };
}
