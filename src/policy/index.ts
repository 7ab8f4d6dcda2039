// Policy: what is allowed. decide() is pure; snapshots name the exact policy that decided.

export { archiveFor } from "./archive-stub.ts";
export { DENY_REASONS, type Decision, type DecisionRequest, decide } from "./decide.ts";
export { refusalError } from "./explain-decision.ts";
export { loadPolicy, type PolicySet } from "./load-policy.ts";
// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only,
// so this index stays importable from Node (tests, the local tools).
export type { PolicyArchive } from "./policy-archive.ts";
export { type PolicyInForce, policyInForce } from "./policy-in-force.ts";
export { policyJsonSchema, type TenantPolicy } from "./policy-schema.ts";
export { signTask, type TaskSigner, taskSigner } from "./sign-task.ts";
export { type HashedSnapshot, hashSnapshot, type PolicySnapshot, snapshotOf } from "./snapshot.ts";
