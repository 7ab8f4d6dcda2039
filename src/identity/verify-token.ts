// Verifies a bearer JWT (issuer, audience, expiry, allowed algorithms) with jose and
// maps its claims to an Identity. Expected failures come back as a result, not a throw.
import { createLocalJWKSet, createRemoteJWKSet, errors, type JWTPayload, type JWTVerifyGetKey, jwtVerify } from "jose";
import type { Config } from "../config/index.ts";
import { PlatformError } from "../errors/index.ts";
import { type Identity, IdentitySchema } from "./identity.ts";

export type VerifyResult = { ok: true; identity: Identity } | { ok: false; error: PlatformError };

const keySets = new WeakMap<Config["auth"], JWTVerifyGetKey>();

function keySetFor(auth: Config["auth"]): JWTVerifyGetKey {
  let keySet = keySets.get(auth);
  if (!keySet) {
    keySet =
      auth.keys.kind === "jwks"
        ? createRemoteJWKSet(auth.keys.url, { cooldownDuration: 30_000, cacheMaxAge: 600_000 })
        : createLocalJWKSet({ keys: [auth.keys.jwk] });
    keySets.set(auth, keySet);
  }
  return keySet;
}

/** Pulls the token out of `Authorization: Bearer <token>`; null when the header is absent. (':' beyond RFC 6750's b64token: the authorization server's tokens are `user:grant:secret`.) */
export function bearerToken(header: string | null): { ok: true; token: string | null } | { ok: false; error: PlatformError } {
  if (header === null || header.trim() === "") return { ok: true, token: null };
  const match = /^Bearer[ \t]+([A-Za-z0-9\-._~+/:]+=*)[ \t]*$/i.exec(header);
  if (!match?.[1]) return { ok: false, error: new PlatformError("invalid_token", "The Authorization header is not `Bearer <token>`.") };
  return { ok: true, token: match[1] };
}

/**
 * Tokens this isolate verified, by their exact text: an agent sends the same bearer token on
 * every call, and checking its signature again each time is the most expensive step of
 * authentication. An entry lives until the token expires, and at most `VERIFIED_TTL_MS`, so a
 * key taken out of the key set stops being honoured within that time; the map is bounded.
 * An entry keeps the token's audiences: a hit still has to be for a resource the token names.
 */
const verified = new WeakMap<Config["auth"], Map<string, { identity: Identity; audiences: string[]; until: number }>>();
export const VERIFIED_TTL_MS = 60_000;
const VERIFIED_MAX = 2_048;

/**
 * Verifies a bearer JWT presented at `resource` (the URL of the protected resource, RFC 8707):
 * its audience must be that URL or one of AUTH_AUDIENCE.
 */
export async function verifyToken(token: string, auth: Config["auth"], resource: string): Promise<VerifyResult> {
  let cache = verified.get(auth);
  if (!cache) {
    cache = new Map();
    verified.set(auth, cache);
  }
  const accepted = [...auth.audience, resource];
  const now = Date.now();
  const hit = cache.get(token);
  if (hit && hit.until > now) {
    return hit.audiences.some((audience) => accepted.includes(audience))
      ? { ok: true, identity: hit.identity }
      : { ok: false, error: new PlatformError("invalid_token", ANOTHER_AUDIENCE) };
  }
  if (hit) cache.delete(token);
  const result = await verifyUncached(token, auth, accepted);
  if (result.ok) {
    if (cache.size >= VERIFIED_MAX) cache.delete(cache.keys().next().value as string);
    cache.set(token, {
      identity: result.identity,
      audiences: result.audiences,
      until: Math.min(now + VERIFIED_TTL_MS, result.identity.expiresAt * 1_000),
    });
  }
  return result;
}

const ANOTHER_AUDIENCE = "The token was issued for another audience (its aud names neither this resource's URL nor AUTH_AUDIENCE).";

async function verifyUncached(
  token: string,
  auth: Config["auth"],
  accepted: string[],
): Promise<{ ok: true; identity: Identity; audiences: string[] } | { ok: false; error: PlatformError }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, keySetFor(auth), {
      issuer: auth.issuer,
      audience: accepted,
      algorithms: auth.algorithms,
      clockTolerance: auth.clockToleranceS,
      requiredClaims: ["exp", "sub", "sid", auth.tenantClaim],
    }));
  } catch (error) {
    const keysDown = error instanceof errors.JWKSTimeout || (error instanceof errors.JOSEError && error.code === "ERR_JWKS_INVALID");
    if (keysDown) return { ok: false, error: new PlatformError("auth_unavailable", "The token keys could not be fetched.", { cause: error }) };
    return { ok: false, error: new PlatformError("invalid_token", describeJoseError(error), { cause: error }) };
  }
  // jose checks iat only against a maximum age; a token issued later than now (beyond the tolerance) is refused here
  if (typeof payload.iat === "number" && payload.iat > Math.floor(Date.now() / 1000) + auth.clockToleranceS) {
    return {
      ok: false,
      error: new PlatformError("invalid_token", "The token was issued in the future (its iat is ahead of this server's clock); check the issuer's clock."),
    };
  }
  const roles = payload[auth.rolesClaim];
  const parsed = IdentitySchema.safeParse({
    actor: payload.sub,
    tenant: payload[auth.tenantClaim],
    session: payload.sid,
    roles: roles === undefined ? [] : typeof roles === "string" ? roles.split(" ") : roles,
    tokenId: payload.jti,
    expiresAt: payload.exp,
    credential: { kind: "jwt", issuer: payload.iss, ...(payload.jti ? { tokenId: payload.jti } : {}) },
  });
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const claim = { actor: "sub", tenant: auth.tenantClaim, session: "sid", roles: auth.rolesClaim }[String(issue?.path[0])] ?? String(issue?.path[0]);
    return { ok: false, error: new PlatformError("invalid_token", `The token's "${claim}" claim is invalid: ${issue?.message}.`) };
  }
  const audiences = typeof payload.aud === "string" ? [payload.aud] : (payload.aud ?? []);
  return { ok: true, identity: parsed.data, audiences };
}

function describeJoseError(error: unknown): string {
  if (error instanceof errors.JWTExpired) return "The token has expired.";
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.claim === "aud") return ANOTHER_AUDIENCE;
    if (error.claim === "iss") return "The token was issued by an untrusted issuer.";
    if (error.claim === "nbf") return "The token is not valid yet.";
    if (error.reason === "missing") return `The token lacks the required "${error.claim}" claim.`;
    return `The token's "${error.claim}" claim is invalid.`;
  }
  if (error instanceof errors.JOSEAlgNotAllowed) return "The token is signed with an algorithm this server does not accept.";
  if (error instanceof errors.JWKSNoMatchingKey) {
    return "The token is signed with a key this server does not know: locally, tokens must be minted (npm run token) against the same STATE_DIR the server uses, which its start-up line names.";
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return "The token's signature does not verify.";
  if (error instanceof errors.JWTInvalid || error instanceof errors.JWSInvalid) return "The token is malformed.";
  return "The token could not be verified.";
}
