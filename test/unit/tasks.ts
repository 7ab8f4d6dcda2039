// Signed tasks for unit tests: policy-signed (as the policy layer would) and
// planner-signed, with the run's throwaway keys (see vitest.config.mts).
import { env, exports } from "cloudflare:workers";
import { importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import { inject } from "vitest";
import { readConfig } from "../../src/config/index.ts";
import type { Contract } from "../../src/contracts/index.ts";
import { canonicalJson, sha256Hex } from "../../src/evidence/index.ts";
import {
  admitTask,
  POLICY_ISSUER,
  PolicyTaskClaimsSchema,
  plannerTrust,
  policyTrust,
  type SandboxBindings,
  type SandboxService,
  TASK_AUDIENCE,
  TASK_TYPE,
  type VerifiedTask,
} from "../../src/execution/index.ts";

declare module "vitest" {
  interface ProvidedContext {
    taskSigningJwk: JWK;
    plannerJwks: Record<string, JWK>;
  }
}

export const tasksConfig = () => readConfig(env).tasks;
export const policyKeys = () => {
  const trust = policyTrust(tasksConfig(), POLICY_ISSUER);
  if (!trust) throw new Error("the unit tests run with a task-signing key");
  return trust;
};
export const plannerKeys = () => plannerTrust(tasksConfig().planners);

export const RUN_ID = "run_00000000-0000-4000-8000-000000000001";

/** Claims of a valid policy-signed task for (code, input) under `contract`; override any of them. */
export async function policyClaims(contract: Contract, code: string, input: unknown, overrides: JWTPayload = {}): Promise<JWTPayload> {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: POLICY_ISSUER,
    aud: TASK_AUDIENCE,
    sub: "alice",
    tenant: "acme",
    sid: "s-1",
    run: RUN_ID,
    contract: { id: contract.id, version: contract.version },
    code: await sha256Hex(code),
    input: await sha256Hex(canonicalJson(input)),
    policy: "c".repeat(64),
    dataClass: "internal",
    scope: ["read"],
    iat: now,
    nbf: now,
    exp: now + contract.task.ttlSeconds,
    jti: crypto.randomUUID(),
    ...overrides,
  };
}

export async function sign(claims: JWTPayload, jwk: JWK, header: Record<string, unknown> = {}): Promise<string> {
  const alg = String(jwk.alg);
  return await new SignJWT(claims).setProtectedHeader({ alg, kid: jwk.kid ?? "", typ: TASK_TYPE, ...header }).sign(await importJWK(jwk, alg));
}

export const policySigningJwk = () => inject("taskSigningJwk");
export const plannerJwk = (id: "acme-planner" | "any-planner") => inject("plannerJwks")[id] as JWK;

/** A task admitted by the real gate, for tests that need something runnable. */
export async function admitted(contract: Contract, code: string, input: unknown = {}): Promise<VerifiedTask<unknown>> {
  const jws = await sign(await policyClaims(contract, code, input), policySigningJwk());
  const admission = await admitTask(
    jws,
    { code, input },
    { tenant: "acme", session: "s-1", contractId: contract.id, contractVersion: contract.version },
    policyKeys(),
    PolicyTaskClaimsSchema,
    {
      maxSeconds: contract.task.ttlSeconds,
      clockToleranceS: tasksConfig().clockToleranceS,
    },
  );
  if (!admission.ok) throw new Error(`test task not admitted: ${admission.reason} ${admission.detail}`);
  return admission.task;
}

/** The Worker's SandboxHost entrypoint, as the run pipeline reaches it (ctx.exports). */
export function testSandboxes(): SandboxService {
  return exports.SandboxHost as unknown as SandboxService;
}

/** What the sandbox host builds a dynamic worker from: the real loader and entrypoints (gateway, capabilities). */
export function testHost(): SandboxBindings {
  return {
    loader: env.LOADER,
    gateway: (props) => exports.EgressGateway({ props }),
    capability: (name, props) => (name === "docs" ? exports.DocsCapability({ props }) : exports.TrackerCapability({ props })),
    connector: (props) => exports.ConnectorBinding({ props }),
  };
}
