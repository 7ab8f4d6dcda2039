// Execution: fresh dynamic workers per run, built from the contract's runtime profile.
export { runInSandbox, SANDBOX_COMPATIBILITY_DATE, type Sandbox, type SandboxJob, startSandbox } from "./run-in-sandbox.ts";
export { HARNESS_MODULE, SANDBOX_HARNESS_SOURCE, TASK_MODULE } from "./sandbox-harness.ts";
export type { LogLine, SandboxOutcome } from "./sandbox-outcome.ts";
