// Intent: tool calls become normalized tasks and go down the layers.
export { type BuildResult, buildTask } from "./build-task.ts";
export { type RunReport, type SubmitDeps, submitToolCall } from "./submit-task.ts";
export { type Task, type ToolArguments, ToolArgumentsSchema } from "./task.ts";
