// The policy in force in this isolate: one hashed snapshot per tenant, each archived
// before anything may point at it. Built lazily, once per tenant per isolate.
import type { Connector, Contract } from "../contracts/index.ts";
import { archiveFor } from "./archive-stub.ts";
import type { PolicySet } from "./load-policy.ts";
import type { PolicyArchive } from "./policy-archive.ts";
import { type HashedSnapshot, hashSnapshot, snapshotOf } from "./snapshot.ts";

export type PolicyInForce = {
  /** The tenant's snapshot, archived; rejects if the archive cannot store it (callers fail closed). */
  snapshotFor(tenant: string): Promise<HashedSnapshot>;
  /** The tenant's snapshot without archiving it: only to name the policy in a failure record. */
  computeSnapshot(tenant: string): Promise<HashedSnapshot>;
};

export function policyInForce(
  policy: PolicySet,
  contracts: readonly Contract[],
  archive: DurableObjectNamespace<PolicyArchive>,
  connectors: readonly Connector[] = [],
): PolicyInForce {
  const snapshots = new Map<string, Promise<HashedSnapshot>>();
  // Own properties only: a tenant named "constructor" must not find Object.prototype's.
  const computeSnapshot = (tenant: string) =>
    hashSnapshot(snapshotOf(tenant, Object.hasOwn(policy.tenants, tenant) ? policy.tenants[tenant] : undefined, contracts, connectors));
  return {
    computeSnapshot,
    snapshotFor(tenant) {
      let pending = snapshots.get(tenant);
      if (!pending) {
        pending = (async () => {
          const hashed = await computeSnapshot(tenant);
          const kept = await archiveFor(archive, hashed.hash).keep(hashed.hash, tenant, hashed.canonical);
          if (!kept.ok) throw new Error(`policy archive refused snapshot ${hashed.hash}: ${kept.reason}`);
          return hashed;
        })();
        // A failed archive write is retried by the next call rather than cached.
        pending.catch(() => snapshots.delete(tenant));
        snapshots.set(tenant, pending);
      }
      return pending;
    },
  };
}
