// Execution: admits only signed tasks, then runs each in a fresh dynamic worker built from its contract.
// Entrypoint and Durable Object classes are exported by the Worker's root (src/index.ts); this index
// exports their types only, so it stays importable from Node.
export { admitTask, type VerifiedTask } from "./admit-task.ts";
export { type Destination, parseDestination } from "./destination.ts";

export { HOST_ANSWER_MARGIN_MS, openSandbox, SANDBOX_BOOT_LIMIT_MS, type SandboxRunStub, type SandboxService } from "./open-sandbox.ts";
export { runInSandbox, SANDBOX_COMPATIBILITY_DATE, type SandboxJobWire, sandboxRuntime } from "./run-in-sandbox.ts";
export { type CallJournal, type RuntimeProfile, runtimeProfile, type SandboxBindings } from "./runtime-profile.ts";

export {
  cutOff,
  failed,
  type LogLine,
  memoryExceeded,
  notRun,
  outcomeFromWire,
  outcomeToWire,
  redactedOutcome,
  release,
  type SandboxOutcome,
  type SandboxOutcomeWire,
  timedOut,
} from "./sandbox-outcome.ts";
export {
  PlannerTaskClaimsSchema,
  POLICY_ISSUER,
  type PolicyTaskClaims,
  PolicyTaskClaimsSchema,
  TASK_AUDIENCE,
  TASK_TYPE,
  type TaskRejection,
} from "./signed-task.ts";
export { StoreItemSchema, storeFor } from "./store-item.ts";
export { plannerTrust, policyTrust, publishedKeys, type TaskTrust } from "./task-trust.ts";
export type { TenantStore } from "./tenant-store.ts";
export { type RunTrace, runTrace } from "./trace-context.ts";
