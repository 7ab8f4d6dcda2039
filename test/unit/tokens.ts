// Signs test tokens inside workerd with the run's throwaway dev key (see vitest.config.mts).
import { importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import { inject } from "vitest";

declare module "vitest" {
  interface ProvidedContext {
    devPrivateJwk: JWK;
  }
}

export const ISSUER = "agent-exec-local";
export const AUDIENCE = "agent-exec";

export type Claims = JWTPayload & { tenant?: unknown; sid?: unknown; roles?: unknown };

/** A valid token for (tenant, actor, session) unless `overrides` say otherwise; `undefined` removes a claim. */
export async function signToken(overrides: Claims = {}, header: { alg?: string; kid?: string } = {}): Promise<string> {
  const jwk = inject("devPrivateJwk");
  const now = Math.floor(Date.now() / 1000);
  const claims: Claims = { iss: ISSUER, aud: AUDIENCE, sub: "alice", tenant: "acme", sid: "s-1", roles: [], iat: now, exp: now + 600, ...overrides };
  for (const [name, value] of Object.entries(overrides)) if (value === undefined) delete claims[name];
  const key = await importJWK(jwk, "ES256");
  return await new SignJWT(claims).setProtectedHeader({ alg: "ES256", kid: jwk.kid ?? "", typ: "JWT", ...header }).sign(key);
}

export function bearer(token: string): HeadersInit {
  return { authorization: `Bearer ${token}` };
}
