// Finds the archive object that keeps the snapshot named by `hash`.
import type { PolicyArchive } from "./policy-archive.ts";

export function archiveFor(namespace: DurableObjectNamespace<PolicyArchive>, hash: string): DurableObjectStub<PolicyArchive> {
  return namespace.getByName(`policy:${hash}`);
}
