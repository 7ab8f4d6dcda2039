// Signs allowed tasks for the runtime: a compact JWS (EdDSA or ES256) typed
// agent-exec-task+jwt, with the key named by kid so it can rotate. What it signs is the
// decision's outcome bound to the exact task: code and input hashes, contract version,
// policy snapshot, data class and scope, for one run, until the contract's task TTL.
import type { SigningJwk } from "../config/index.ts";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { type JwtSigner, jwtSigner } from "../evidence/index.ts";
import { POLICY_ISSUER, type PolicyTaskClaims, TASK_AUDIENCE, TASK_TYPE } from "../execution/index.ts";
import type { Decision } from "./decide.ts";

export type TaskSigner = JwtSigner<PolicyTaskClaims>;

export function taskSigner(jwk: SigningJwk): TaskSigner {
  return jwtSigner<PolicyTaskClaims>(jwk, TASK_TYPE);
}

/** The task as policy signs it. */
export type TaskToSign = {
  runId: string;
  receivedAt: number;
  identity: { actor: string; tenant: string; session: string };
  contract: Contract;
  codeSha256: string;
  inputSha256: string;
};

export type SignedTask = { ok: true; jws: string; claims: PolicyTaskClaims; kid: string } | { ok: false; error: PlatformError };

/** Signs what the decision allowed; without a usable key nothing can run (`misconfigured`). */
export async function signTask(signer: TaskSigner | null, task: TaskToSign, decision: Decision, policyHash: string): Promise<SignedTask> {
  if (!signer) return { ok: false, error: new PlatformError("misconfigured", "No task-signing key is configured (TASK_SIGNING_KEY), so nothing can run.") };
  const now = Math.floor(task.receivedAt / 1000);
  const claims: PolicyTaskClaims = {
    iss: POLICY_ISSUER,
    aud: TASK_AUDIENCE,
    sub: task.identity.actor,
    tenant: task.identity.tenant,
    sid: task.identity.session,
    run: task.runId,
    contract: { id: task.contract.id, version: task.contract.version },
    code: task.codeSha256,
    input: task.inputSha256,
    policy: policyHash,
    dataClass: decision.dataClass,
    scope: decision.scope,
    iat: now,
    nbf: now,
    exp: now + task.contract.task.ttlSeconds,
    jti: crypto.randomUUID(),
  };
  try {
    return { ok: true, jws: await signer.sign(claims), claims, kid: signer.kid };
  } catch (error) {
    return {
      ok: false,
      error: new PlatformError("misconfigured", "The task-signing key (TASK_SIGNING_KEY) could not be used, so nothing can run.", { cause: error }),
    };
  }
}
