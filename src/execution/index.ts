// Execution: admits only signed tasks, then runs each in a fresh dynamic worker built from its contract.
export { type Admission, admitTask, type Expectation, type VerifiedTask } from "./admit-task.ts";
export { CAPABILITY_ERRORS, type CapabilityErrorCode } from "./capability-error.ts";
export { type Destination, parseDestination, withinPlan } from "./destination.ts";
export { decideEgress, EGRESS_DENIALS, type EgressDenial } from "./egress-policy.ts";
export { HOST_ANSWER_MARGIN_MS, openSandbox, SANDBOX_BOOT_LIMIT_MS, type SandboxRunStub, type SandboxService } from "./open-sandbox.ts";
export { BINDING_NAMES, runInSandbox, SANDBOX_COMPATIBILITY_DATE, type Sandbox, type SandboxJob, type SandboxJobWire, startSandbox } from "./run-in-sandbox.ts";
export {
  CAPABILITY_ACTIONS,
  type CapabilityProps,
  type GatewayProps,
  type RunContext,
  type RuntimeProfile,
  runtimeProfile,
  type SandboxBindings,
} from "./runtime-profile.ts";
export { HARNESS_MODULE, SANDBOX_HARNESS_SOURCE, TASK_MODULE } from "./sandbox-harness.ts";
// Entrypoint and Durable Object classes are exported by the Worker's root (src/index.ts); this index
// exports their types only, so it stays importable from Node.
export type { SandboxHost } from "./sandbox-host.ts";
export {
  cutOff,
  failed,
  type LogLine,
  memoryExceeded,
  outcomeFromWire,
  outcomeToWire,
  release,
  type SandboxOutcome,
  type SandboxOutcomeWire,
  timedOut,
} from "./sandbox-outcome.ts";
export {
  type PlannerTaskClaims,
  PlannerTaskClaimsSchema,
  POLICY_ISSUER,
  type PolicyTaskClaims,
  PolicyTaskClaimsSchema,
  TASK_AUDIENCE,
  TASK_REJECTIONS,
  TASK_TYPE,
  type TaskRejection,
} from "./signed-task.ts";
export { type StoreItem, StoreItemSchema, storeFor } from "./store-item.ts";
export { plannerTrust, policyTrust, publishedKeys, type TaskTrust } from "./task-trust.ts";
export type { TenantStore } from "./tenant-store.ts";
