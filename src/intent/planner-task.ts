// POST /v1/tasks: workflow intent that does not come through an agent. A trusted planner
// signs the task (tenant, session, contract, code and input hashes, window, jti); the
// submitter authenticates with its own bearer token for the same tenant and session.
// The planner's task passes the runtime's checks, then policy decides as for any call.
import { z } from "zod";
import { type Contract, DataClassSchema } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { admitTask, PlannerTaskClaimsSchema, type TaskTrust } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { type RunReport, type Submission, type SubmitDeps, submitTask, taskRejected } from "./submit-task.ts";

export const PlannerSubmissionSchema = z
  .object({
    contract: z.string().min(1).max(64).describe("The id of the contract to run under; must match the signed task."),
    task: z.string().min(1).max(16_384).describe("The compact JWS a trusted planner signed."),
    code: z.string().min(1),
    input: z.unknown().optional(),
    dataClass: DataClassSchema.optional(),
  })
  .strict();

export async function submitPlannerTask(
  deps: SubmitDeps,
  identity: Identity,
  body: unknown,
  contracts: readonly Contract[],
  planners: TaskTrust,
  /** Batch tasks run on the batch lane, under a run id, slot and turn the consumer took; a planner's call may have been held before it came. */
  batch: Pick<Submission, "lane" | "batch" | "runId" | "slot"> = {},
): Promise<{ ok: true; report: RunReport } | { ok: false; error: PlatformError }> {
  const parsed = PlannerSubmissionSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      error: new PlatformError("bad_request", `Field ${issue?.path.join(".") || "(body)"}: ${issue?.message}.`, {
        hint: "Send {contract, task, code, input?, dataClass?} as JSON.",
      }),
    };
  }
  const submission = parsed.data;
  const contract = contracts.find((c) => c.id === submission.contract);
  if (!contract)
    return { ok: false, error: new PlatformError("not_found", `No contract has the id "${submission.contract}".`, { hint: "Use a contract id from GET /." }) };

  const input = submission.input ?? {};
  const admission = await admitTask(
    submission.task,
    { code: submission.code, input },
    // The planner signs for the submitter itself (sub), for this tenant, session and contract version.
    { tenant: identity.tenant, session: identity.session, contractId: contract.id, contractVersion: contract.version, subject: identity.actor },
    planners,
    PlannerTaskClaimsSchema,
    { maxSeconds: contract.task.ttlSeconds, clockToleranceS: deps.tasks.clockToleranceS },
  );
  const kid = admission.ok ? admission.task.kid : admission.kid;
  const intent = {
    source: "planner" as const,
    planner: planners.issuerOf(kid ?? undefined),
    kid,
    jti: admission.ok ? admission.task.claims.jti : admission.jti,
    verdict: admission.ok ? "accepted" : admission.reason,
  };
  // A planner may sign the data class; when it does, that is what policy judges.
  const dataClass = admission.ok ? (admission.task.claims.dataClass ?? submission.dataClass) : submission.dataClass;
  const report = await submitTask(deps, {
    contract,
    identity,
    arguments: { code: submission.code, input, ...(dataClass ? { dataClass } : {}) },
    intent,
    ...batch,
    ...(admission.ok
      ? { spend: [{ jti: `planner:${admission.task.claims.iss}:${admission.task.claims.jti}`, exp: admission.task.claims.exp, role: "intent" as const }] }
      : { refusal: taskRejected(admission.reason, admission.detail) }),
  });
  return { ok: true, report };
}
