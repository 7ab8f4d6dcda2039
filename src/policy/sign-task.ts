// Signs allowed tasks for the runtime: a compact JWS (EdDSA or ES256) typed
// agent-exec-task+jwt, with the key named by kid so it can rotate.
import type { SigningJwk } from "../config/index.ts";
import { type JwtSigner, jwtSigner } from "../evidence/index.ts";
import { type PolicyTaskClaims, TASK_TYPE } from "../execution/index.ts";

export type TaskSigner = JwtSigner<PolicyTaskClaims>;

export function taskSigner(jwk: SigningJwk): TaskSigner {
  return jwtSigner<PolicyTaskClaims>(jwk, TASK_TYPE);
}
