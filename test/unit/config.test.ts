import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config/index.ts";
import { PlatformError } from "../../src/errors/index.ts";
import { plannerJwk, policySigningJwk } from "./tasks.ts";

const vars = (overrides: Record<string, string>) => {
  const raw = env as unknown as Record<string, unknown>;
  return { AUTH_ISSUER: "i", AUTH_AUDIENCE: "a", AUTH_DEV_PUBLIC_JWK: String(raw.AUTH_DEV_PUBLIC_JWK), ...overrides };
};
const publicOf = (jwk: Record<string, unknown>) => {
  const { d: _d, ...rest } = jwk;
  return rest;
};
const misconfigured = (overrides: Record<string, string>) => {
  try {
    readConfig(vars(overrides));
  } catch (error) {
    expect(error).toBeInstanceOf(PlatformError);
    return (error as PlatformError).message;
  }
  throw new Error("expected a misconfigured error");
};

describe("configuration", () => {
  it("reads the unit tests' own configuration", () => {
    const config = readConfig(env);
    expect(config.tasks.signingKey?.kid).toBe(policySigningJwk().kid);
    expect(config.tasks.planners.map((p) => p.id)).toEqual(["acme-planner", "any-planner"]);
  });

  describe("hardening", () => {
    it("refuses two task keys with the same kid (one planner could sign as another)", () => {
      const acme = publicOf(plannerJwk("acme-planner") as Record<string, unknown>);
      const any = { ...publicOf(plannerJwk("any-planner") as Record<string, unknown>), kid: acme.kid };
      const message = misconfigured({
        TASK_PLANNERS: JSON.stringify([
          { id: "a", tenants: ["acme"], jwk: acme },
          { id: "b", tenants: ["*"], jwk: any },
        ]),
      });
      expect(message).toMatch(/distinct kids/);
    });

    it("refuses a planner key whose kty does not match its alg", () => {
      const acme = publicOf(plannerJwk("acme-planner") as Record<string, unknown>);
      expect(misconfigured({ TASK_PLANNERS: JSON.stringify([{ id: "a", tenants: ["acme"], jwk: { ...acme, alg: "ES256" } }]) })).toMatch(
        /kty and crv must match alg/,
      );
    });

    it("refuses a private key where a public one belongs, without echoing it", () => {
      const message = misconfigured({ TASK_PLANNERS: JSON.stringify([{ id: "a", tenants: ["acme"], jwk: plannerJwk("acme-planner") }]) });
      expect(message).toMatch(/public key/);
      expect(message).not.toContain(String((plannerJwk("acme-planner") as Record<string, unknown>).d));
    });

    it("refuses an evidence key that is public only, or that shares a kid with a task key", () => {
      expect(misconfigured({ EVIDENCE_SIGNING_KEY: JSON.stringify(publicOf(policySigningJwk() as Record<string, unknown>)) })).toMatch(
        /EVIDENCE_SIGNING_KEY .*private key/,
      );
      expect(misconfigured({ TASK_SIGNING_KEY: JSON.stringify(policySigningJwk()), EVIDENCE_SIGNING_KEY: JSON.stringify(policySigningJwk()) })).toMatch(
        /distinct kids.*EVIDENCE_SIGNING_KEY/,
      );
    });

    it("refuses the local bench routes beside a production identity provider", () => {
      expect(misconfigured({ AUTH_JWKS_URL: "https://idp.example.com/jwks", LOCAL_BENCH: "1" })).toMatch(/LOCAL_BENCH/);
    });
  });
});
