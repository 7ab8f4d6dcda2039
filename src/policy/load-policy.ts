// Parses policy files against the contracts they refer to, or names every file and
// field that is wrong. Used at build and start (Node) and on first use (workerd).
import { type Contract, type DataFile, type FileProblem, fieldOf } from "../contracts/index.ts";
import { PolicyFileSchema, type TenantPolicy } from "./policy-schema.ts";

export type PolicySet = { tenants: Readonly<Record<string, TenantPolicy>> };

export type PolicyLoadResult = { ok: true; policy: PolicySet } | { ok: false; problems: FileProblem[] };

export function loadPolicy(files: readonly DataFile[], contracts: readonly Contract[]): PolicyLoadResult {
  const problems: FileProblem[] = [];
  const tenants: Record<string, TenantPolicy> = {};
  const owners = new Map<string, string>();
  const contractsById = new Map(contracts.map((c) => [c.id, c]));

  for (const { file, json } of files) {
    const parsed = PolicyFileSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ file, field: fieldOf(issue), message: issue.message });
      continue;
    }
    for (const [name, tenant] of Object.entries(parsed.data.tenants)) {
      const owner = owners.get(name);
      if (owner) {
        problems.push({ file, field: `tenants.${name}`, message: `tenant "${name}" is also declared in ${owner}` });
        continue;
      }
      owners.set(name, file);
      tenants[name] = tenant;
      for (const [teamName, team] of Object.entries(tenant.teams)) {
        team.grants.forEach((grant, index) => {
          const at = `tenants.${name}.teams.${teamName}.grants.${index}`;
          const contract = contractsById.get(grant.contract);
          if (!contract) {
            problems.push({ file, field: `${at}.contract`, message: `no contract has the id "${grant.contract}"` });
            return;
          }
          for (const role of grant.roles) {
            if (!tenant.roles.includes(role)) problems.push({ file, field: `${at}.roles`, message: `role "${role}" is not declared in tenants.${name}.roles` });
          }
          for (const action of grant.actions) {
            if (action !== "*" && !contract.actions.includes(action)) {
              problems.push({
                file,
                field: `${at}.actions`,
                message: `contract ${contract.id} has no action "${action}" (it has: ${contract.actions.join(", ") || "none"})`,
              });
            }
          }
        });
      }
    }
  }
  if (files.length === 0) problems.push({ file: "policy/", field: "(files)", message: "no policy files found" });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, policy: { tenants } };
}
