import { base64url, exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { bundledCatalog } from "../../src/catalog/index.ts";
import type { Contract } from "../../src/contracts/index.ts";
import { admitTask, PlannerTaskClaimsSchema, PolicyTaskClaimsSchema, TASK_TYPE, type TaskTrust } from "../../src/execution/index.ts";
import { plannerJwk, plannerKeys, policyClaims, policyKeys, policySigningJwk, sign, tasksConfig } from "./tasks.ts";

const contract = bundledCatalog().contracts.find((c) => c.id === "read-only-analysis") as Contract;
const CODE = "export default () => 1";
const INPUT = { a: 1 };
const now = () => Math.floor(Date.now() / 1000);
const expect_ = { tenant: "acme", session: "s-1", contractId: contract.id, contractVersion: contract.version };

async function admit(jws: string, payload: { code: string; input: unknown } = { code: CODE, input: INPUT }, trust: TaskTrust = policyKeys(), tenant = "acme") {
  return await admitTask(jws, payload, { ...expect_, tenant }, trust, PolicyTaskClaimsSchema, {
    maxSeconds: contract.task.ttlSeconds,
    clockToleranceS: tasksConfig().clockToleranceS,
  });
}

const claims = (overrides: JWTPayload = {}) => policyClaims(contract, CODE, INPUT, overrides);
const signed = async (overrides: JWTPayload = {}, header: Record<string, unknown> = {}) => sign(await claims(overrides), policySigningJwk(), header);

describe("signed tasks", () => {
  it("admits a task the policy layer signed for exactly this code and input", async () => {
    const admission = await admit(await signed());
    expect(admission.ok).toBe(true);
    if (admission.ok) expect(admission.task).toMatchObject({ code: CODE, input: INPUT, claims: { tenant: "acme", run: expect.stringMatching(/^run_/) } });
  });

  it("admits a task within the allowed clock skew", async () => {
    expect((await admit(await signed({ exp: now() - 2, iat: now() - 30, nbf: now() - 30 }))).ok).toBe(true);
    expect((await admit(await signed({ nbf: now() + 2 }))).ok).toBe(true);
  });
});

describe("hardening", () => {
  it.each<[string, () => Promise<string>, string]>([
    [
      "alg: none",
      async () =>
        `${base64url.encode(JSON.stringify({ alg: "none", typ: TASK_TYPE, kid: policySigningJwk().kid }))}.${base64url.encode(JSON.stringify(await claims()))}.`,
      "algorithm_not_allowed",
    ],
    [
      "HS256 keyed with the public key (algorithm confusion)",
      async () => {
        const { d: _d, ...publicJwk } = policySigningJwk();
        return await new SignJWT(await claims())
          .setProtectedHeader({ alg: "HS256", kid: publicJwk.kid, typ: TASK_TYPE })
          .sign(new TextEncoder().encode(JSON.stringify(publicJwk)));
      },
      "algorithm_not_allowed",
    ],
    [
      "the wrong key under the right kid",
      async () => {
        const { privateKey } = await generateKeyPair("EdDSA");
        return await new SignJWT(await claims()).setProtectedHeader({ alg: "EdDSA", kid: policySigningJwk().kid, typ: TASK_TYPE }).sign(privateKey);
      },
      "signature_invalid",
    ],
    [
      "an unknown kid",
      async () => {
        const { privateKey, publicKey } = await generateKeyPair("EdDSA");
        return await new SignJWT(await claims())
          .setProtectedHeader({ alg: "EdDSA", kid: (await exportJWK(publicKey)).x ?? "x", typ: TASK_TYPE })
          .sign(privateKey);
      },
      "key_unknown",
    ],
    ["an expired task", () => signed({ iat: now() - 100, nbf: now() - 100, exp: now() - 40 }), "task_expired"],
    ["a task not yet valid", () => signed({ nbf: now() + 30 }), "task_not_yet_valid"],
    ["a task issued beyond the allowed clock skew", () => signed({ iat: now() + 30, nbf: now(), exp: now() + 60 }), "issued_in_future"],
    ["expiry just beyond the clock skew", () => signed({ iat: now() - 60, nbf: now() - 60, exp: now() - 6 }), "task_expired"],
    ["a window longer than the contract allows", () => signed({ exp: now() + contract.task.ttlSeconds + 600 }), "window_too_long"],
    ["a task issued too long ago", () => signed({ iat: now() - contract.task.ttlSeconds - 120, nbf: now() - 100, exp: now() + 10 }), "window_too_long"],
    ["a payload edited after signing", async () => editPayload(await signed(), { tenant: "acme", scope: ["tracker.comment"] }), "signature_invalid"],
    ["a task for another tenant", () => signed({ tenant: "globex" }), "tenant_mismatch"],
    ["a task for another session", () => signed({ sid: "s-other" }), "session_mismatch"],
    ["a task for another contract", () => signed({ contract: { id: "privileged-change", version: "1.0.0" } }), "contract_mismatch"],
    ["a task for another version of the contract", () => signed({ contract: { id: contract.id, version: "0.9.0" } }), "contract_mismatch"],
    ["a task for another audience", () => signed({ aud: "somewhere-else" }), "audience_mismatch"],
    ["a task from another issuer", () => signed({ iss: "mallory" }), "issuer_untrusted"],
    ["a bearer token's typ", () => signed({}, { typ: "JWT" }), "task_malformed"],
    ["a claim of the wrong shape", () => signed({ scope: "everything" }), "task_malformed"],
    ["a task that is not a JWS", async () => "not.a.task", "task_malformed"],
  ])("refuses %s", async (_case, makeTask, reason) => {
    const admission = await admit(await makeTask());
    expect(admission).toMatchObject({ ok: false, reason });
  });

  it("refuses code swapped after signing", async () => {
    expect(await admit(await signed(), { code: "export default () => 2", input: INPUT })).toMatchObject({ ok: false, reason: "code_mismatch" });
  });

  it("hands the sandbox exactly the canonical input that was hashed (-0 is 0)", async () => {
    const jws = await sign(await policyClaims(contract, CODE, { n: 0 }), policySigningJwk());
    const admission = await admit(jws, { code: CODE, input: { n: -0 } });
    expect(admission.ok).toBe(true);
    if (admission.ok) expect(Object.is((admission.task.input as { n: number }).n, 0)).toBe(true);
  });

  it("refuses input swapped after signing, whatever its key order", async () => {
    expect(await admit(await signed(), { code: CODE, input: { a: 2 } })).toMatchObject({ ok: false, reason: "input_mismatch" });
    expect((await admit(await signed(), { code: CODE, input: JSON.parse('{"a":1}') })).ok).toBe(true);
  });

  describe("planner tasks", () => {
    const plannerClaims = async (overrides: JWTPayload = {}) => {
      const { run: _run, policy: _policy, scope: _scope, dataClass: _dc, ...common } = await claims();
      return { ...common, iss: "acme-planner", ...overrides };
    };
    const admitPlanner = async (jws: string, tenant = "acme") =>
      await admitTask(jws, { code: CODE, input: INPUT }, { ...expect_, tenant }, plannerKeys(), PlannerTaskClaimsSchema, {
        maxSeconds: contract.task.ttlSeconds,
        clockToleranceS: tasksConfig().clockToleranceS,
      });

    it("admits a task from a planner trusted for the tenant", async () => {
      expect((await admitPlanner(await sign(await plannerClaims(), plannerJwk("acme-planner")))).ok).toBe(true);
      expect((await admitPlanner(await sign(await plannerClaims({ iss: "any-planner", tenant: "globex" }), plannerJwk("any-planner")), "globex")).ok).toBe(
        true,
      );
    });

    it("refuses a planner signing for a tenant it is not trusted for", async () => {
      const jws = await sign(await plannerClaims({ tenant: "globex" }), plannerJwk("acme-planner"));
      expect(await admitPlanner(jws, "globex")).toMatchObject({ ok: false, reason: "planner_not_trusted" });
    });

    it("refuses a planner task signed for another subject than the submitter", async () => {
      const jws = await sign(await plannerClaims({ sub: "someone-else" }), plannerJwk("acme-planner"));
      const admission = await admitTask(jws, { code: CODE, input: INPUT }, { ...expect_, subject: "alice" }, plannerKeys(), PlannerTaskClaimsSchema, {
        maxSeconds: contract.task.ttlSeconds,
        clockToleranceS: tasksConfig().clockToleranceS,
      });
      expect(admission).toMatchObject({ ok: false, reason: "subject_mismatch" });
    });

    it("refuses a planner claiming another planner's name", async () => {
      const jws = await sign(await plannerClaims({ iss: "any-planner" }), plannerJwk("acme-planner"));
      expect(await admitPlanner(jws)).toMatchObject({ ok: false, reason: "issuer_untrusted" });
    });

    it("does not accept the policy layer's key as a planner", async () => {
      expect(await admitPlanner(await sign(await plannerClaims(), policySigningJwk()))).toMatchObject({ ok: false, reason: "key_unknown" });
    });
  });
});

function editPayload(jws: string, changes: object): string {
  const [header, payload, signature] = jws.split(".");
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload ?? "")));
  return `${header}.${base64url.encode(JSON.stringify({ ...claims, ...changes }))}.${signature}`;
}
