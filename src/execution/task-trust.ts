// Which keys the runtime trusts to sign tasks: the policy layer's (current and retired),
// and each configured planner's, scoped to the tenants it may plan for.
import { createLocalJWKSet, type JWK, type JWTVerifyGetKey } from "jose";
import type { Config, Planner } from "../config/index.ts";

export type TaskTrust = {
  /** Who signs: the policy layer, or a planner. */
  kind: "policy" | "planner";
  /** A key set holding only the key named by kid (none when the kid is unknown). */
  keySetFor(kid: string | undefined): JWTVerifyGetKey | null;
  algorithms: string[];
  /** Accepted `iss` values. */
  issuers: string[];
  /** For planners: may this key plan for this tenant? (The policy layer signs for every tenant.) */
  allows(kid: string | undefined, tenant: string): boolean;
  /** The one `iss` a key may sign as (a planner signs only as itself); null for an unknown key. */
  issuerOf(kid: string | undefined): string | null;
};

const ALGORITHMS = ["EdDSA", "ES256"];

function publicJwk(jwk: Config["tasks"]["previousKeys"][number]): JWK {
  const { d: _private, ...rest } = jwk as JWK;
  return rest;
}

export function policyTrust(tasks: Config["tasks"], issuer: string): TaskTrust | null {
  if (!tasks.signingKey) return null;
  const keys = [publicJwk(tasks.signingKey), ...tasks.previousKeys.map(publicJwk)];
  const sets = new Map(keys.map((key) => [key.kid, createLocalJWKSet({ keys: [key] })]));
  return {
    kind: "policy",
    keySetFor: (kid) => (kid === undefined ? null : (sets.get(kid) ?? null)),
    algorithms: ALGORITHMS,
    issuers: [issuer],
    allows: (kid) => keys.some((key) => key.kid === kid),
    issuerOf: (kid) => (keys.some((key) => key.kid === kid) ? issuer : null),
  };
}

export function plannerTrust(planners: readonly Planner[]): TaskTrust {
  const byKid = new Map(planners.map((planner) => [planner.jwk.kid, planner]));
  const sets = new Map(planners.map((planner) => [planner.jwk.kid, createLocalJWKSet({ keys: [publicJwk(planner.jwk)] })]));
  return {
    kind: "planner",
    keySetFor: (kid) => (kid === undefined ? null : (sets.get(kid) ?? null)),
    algorithms: ALGORITHMS,
    issuers: planners.map((planner) => planner.id),
    allows: (kid, tenant) => {
      const planner = kid === undefined ? undefined : byKid.get(kid);
      return planner !== undefined && (planner.tenants.includes("*") || planner.tenants.includes(tenant));
    },
    issuerOf: (kid) => (kid === undefined ? null : (byKid.get(kid)?.id ?? null)),
  };
}

/** Public keys the Worker publishes at /.well-known/jwks.json: a signing key (tasks', evidence's) and its retired ones. */
export function publishedKeys(keys: Pick<Config["tasks"], "signingKey" | "previousKeys">): JWK[] {
  return [...(keys.signingKey ? [keys.signingKey] : []), ...keys.previousKeys].map((key) => ({ ...publicJwk(key), use: "sig" }));
}
