// Intent: tool calls and planner submissions become normalized tasks and go down the layers.
export { type BuildResult, buildTask } from "./build-task.ts";
export { PlannerSubmissionSchema, submitPlannerTask } from "./planner-task.ts";
export { type RunEnvelope, runEnvelope } from "./run-envelope.ts";
export { type RunReport, type Submission, type SubmitDeps, submitTask, submitToolCall, taskRejected } from "./submit-task.ts";
export { type Task, type ToolArguments, ToolArgumentsSchema } from "./task.ts";
