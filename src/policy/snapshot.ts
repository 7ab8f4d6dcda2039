// The policy in force for one tenant, as an immutable snapshot named by the SHA-256
// of its RFC 8785 canonical JSON. Per tenant, so a tenant's auditor can be shown the
// exact policy that decided its runs without seeing any other tenant's teams.
import { z } from "zod";
import { type Connector, type Contract, ContractSchema, DATA_CLASSES } from "../contracts/index.ts";
import { canonicalJson, sha256Hex } from "../evidence/index.ts";
import { type TenantPolicy, TenantPolicySchema } from "./policy-schema.ts";

export const SNAPSHOT_FORMAT = "agent-exec/policy-snapshot@1";

export const PolicySnapshotSchema = z.object({
  format: z.literal(SNAPSHOT_FORMAT),
  tenant: z.string(),
  /** Null when the tenant is not in the policy: every decision is then `tenant_unknown`. */
  policy: TenantPolicySchema.nullable(),
  dataClasses: z.array(z.string()),
  contracts: z.array(ContractSchema),
  /** The connectors the contracts grant, MCP ones with their pinned tool lists and hashes; absent when there are none. */
  connectors: z.array(z.record(z.string(), z.unknown())).optional(),
});
export type PolicySnapshot = z.infer<typeof PolicySnapshotSchema>;

export type HashedSnapshot = { hash: string; snapshot: PolicySnapshot; canonical: string };

/**
 * A connector decides what runs as much as a contract does (an operation's effect is its
 * action; an MCP server's pinned tool list is what its calls are checked against), so the
 * connectors the contracts grant are in the snapshot: a new pin is a new snapshot.
 */
export function snapshotOf(
  tenant: string,
  policy: TenantPolicy | undefined,
  contracts: readonly Contract[],
  connectors: readonly Connector[] = [],
): PolicySnapshot {
  const granted = new Set(contracts.flatMap((contract) => contract.connectors.map((grant) => grant.connector)));
  const inForce = connectors.filter((connector) => granted.has(connector.name)).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return {
    format: SNAPSHOT_FORMAT,
    tenant,
    policy: policy ?? null,
    dataClasses: [...DATA_CLASSES],
    contracts: [...contracts].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)),
    ...(inForce.length > 0 ? { connectors: inForce } : {}),
  };
}

export async function hashSnapshot(snapshot: PolicySnapshot): Promise<HashedSnapshot> {
  const canonical = canonicalJson(snapshot);
  return { hash: await sha256Hex(canonical), snapshot, canonical };
}
