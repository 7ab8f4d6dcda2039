// Execution: admits only signed tasks, then runs each in a fresh dynamic worker built from its contract.
export { type Admission, admitTask, type Expectation, type VerifiedTask } from "./admit-task.ts";
export { runInSandbox, SANDBOX_COMPATIBILITY_DATE, type Sandbox, type SandboxJob, startSandbox } from "./run-in-sandbox.ts";
export { HARNESS_MODULE, SANDBOX_HARNESS_SOURCE, TASK_MODULE } from "./sandbox-harness.ts";
export type { LogLine, SandboxOutcome } from "./sandbox-outcome.ts";
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
export { plannerTrust, policyTrust, publishedKeys, type TaskTrust } from "./task-trust.ts";
