// Intent: tool calls and planner submissions become normalized tasks and go down the layers.
export { buildTask, callDigests } from "./build-task.ts";
export { submitPlannerTask } from "./planner-task.ts";
export { runEnvelope } from "./run-envelope.ts";
export { deadlineOf } from "./run-records.ts";
export { type RunReport, type SubmitDeps, submitTask, submitToolCall } from "./submit-task.ts";
export { newRunId } from "./task.ts";
