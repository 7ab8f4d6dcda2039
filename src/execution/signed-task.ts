// What the runtime accepts: a compact JWS over these claims, typed `agent-exec-task+jwt`.
// Policy-signed tasks name the run, the policy that allowed it and the action scope;
// planner-signed tasks (POST /v1/tasks) name what a trusted planner wants run.
import { z } from "zod";
import { DataClassSchema } from "../contracts/index.ts";

export const TASK_TYPE = "agent-exec-task+jwt";
export const TASK_AUDIENCE = "agent-exec/execution";
export const POLICY_ISSUER = "agent-exec/policy";

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/);

const Common = {
  aud: z.literal(TASK_AUDIENCE),
  sub: Name,
  tenant: Name,
  sid: Name,
  contract: z.object({ id: z.string().min(1).max(64), version: z.string().max(32).optional() }).strict(),
  code: Sha256,
  input: Sha256,
  iat: z.int(),
  nbf: z.int(),
  exp: z.int(),
  jti: z.string().min(16).max(128),
};

export const PolicyTaskClaimsSchema = z
  .object({
    ...Common,
    iss: z.literal(POLICY_ISSUER),
    run: z.string().regex(/^run_[0-9a-f-]{36}$/),
    policy: Sha256,
    dataClass: DataClassSchema,
    scope: z.array(z.string().max(128)).max(64),
  })
  .strict();
export type PolicyTaskClaims = z.infer<typeof PolicyTaskClaimsSchema>;

export const PlannerTaskClaimsSchema = z
  .object({
    ...Common,
    iss: Name,
    dataClass: DataClassSchema.optional(),
  })
  .strict();
export type PlannerTaskClaims = z.infer<typeof PlannerTaskClaimsSchema>;

/** Why a signed task was refused. Stable: evidence and clients key on them. */
export const TASK_REJECTIONS = [
  "task_malformed",
  "algorithm_not_allowed",
  "key_unknown",
  "planner_not_trusted",
  "signature_invalid",
  "audience_mismatch",
  "issuer_untrusted",
  "task_expired",
  "task_not_yet_valid",
  "issued_in_future",
  "window_too_long",
  "tenant_mismatch",
  "session_mismatch",
  "subject_mismatch",
  "contract_mismatch",
  "code_mismatch",
  "input_mismatch",
  "task_replayed",
] as const;
export type TaskRejection = (typeof TASK_REJECTIONS)[number];
