// POST /v1/tasks: runs a planner-signed task for the bearer's tenant and session and
// answers with the run's envelope: 200 when it completed, the error's status otherwise.
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { TaskTrust } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { runEnvelope, type SubmitDeps, submitPlannerTask } from "../intent/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const TASKS_ROUTE = "/v1/tasks";
const MAX_BODY_BYTES = 4 * 1024 * 1024;

export async function serveTasks(
  request: Request,
  identity: Identity,
  deps: SubmitDeps,
  contracts: readonly Contract[],
  planners: TaskTrust,
): Promise<Response> {
  if (request.method !== "POST") return errorResponse(new PlatformError("method_not_allowed", "Submit tasks with POST."), { allow: "POST" });
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
    return errorResponse(new PlatformError("bad_request", `The body is above ${MAX_BODY_BYTES} bytes.`, { hint: "Send smaller code or input." }));
  }
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return errorResponse(new PlatformError("bad_request", "The body is not JSON.", { hint: "Send {contract, task, code, input?, dataClass?} as JSON." }));
  }
  const submitted = await submitPlannerTask(deps, identity, body, contracts, planners);
  if (!submitted.ok) return errorResponse(submitted.error);
  const envelope = runEnvelope(submitted.report);
  const status = envelope.error ? (submitted.report.outcome.error?.status ?? 500) : 200;
  return jsonResponse(envelope, { status });
}
