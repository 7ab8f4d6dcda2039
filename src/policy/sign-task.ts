// Signs allowed tasks for the runtime: a compact JWS (EdDSA or ES256) typed
// agent-exec-task+jwt, with the key named by kid so it can rotate.
import { importJWK, SignJWT } from "jose";
import type { SigningJwk } from "../config/index.ts";
import { type PolicyTaskClaims, TASK_TYPE } from "../execution/index.ts";

export type TaskSigner = { kid: string; sign(claims: PolicyTaskClaims): Promise<string> };

export function taskSigner(jwk: SigningJwk): TaskSigner {
  let key: ReturnType<typeof importJWK> | undefined;
  return {
    kid: jwk.kid,
    async sign(claims) {
      key ??= importJWK(jwk, jwk.alg);
      let imported: Awaited<ReturnType<typeof importJWK>>;
      try {
        imported = await key;
      } catch (error) {
        key = undefined; // a bad key is retried, never cached
        throw error;
      }
      return await new SignJWT({ ...claims }).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ: TASK_TYPE }).sign(imported);
    },
  };
}
