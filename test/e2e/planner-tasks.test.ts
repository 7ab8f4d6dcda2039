// POST /v1/tasks end to end: a trusted planner signs, a service submits with its own
// bearer token. Every refused task ends with nothing run and a record in the
// submitter's session ledger saying why.
import { createHash } from "node:crypto";
import { base64url, importJWK, type JWTPayload, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newKeyPair } from "../../src/local/dev-keys.ts";
import { type LocalServer, startLocalServer } from "../helpers/local-server.ts";

const TASK_TYPE = "agent-exec-task+jwt";
const CODE = "export default async (input) => { console.log('ran'); return { doubled: input.n * 2 }; }";
const INPUT = { n: 21 };
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

let server: LocalServer;
let acmePlanner: Awaited<ReturnType<typeof newKeyPair>>;
let anyPlanner: Awaited<ReturnType<typeof newKeyPair>>;

beforeAll(async () => {
  acmePlanner = await newKeyPair("EdDSA");
  anyPlanner = await newKeyPair("ES256");
  server = await startLocalServer({
    env: {
      TASK_PLANNERS: JSON.stringify([
        { id: "acme-planner", tenants: ["acme"], jwk: acmePlanner.publicJwk },
        { id: "any-planner", tenants: ["*"], jwk: anyPlanner.publicJwk },
      ]),
    },
  });
});
afterAll(async () => {
  await server?.stop();
});

const now = () => Math.floor(Date.now() / 1000);
const claims = (overrides: JWTPayload = {}): JWTPayload => ({
  iss: "acme-planner",
  aud: "agent-exec/execution",
  sub: "workflow-service", // the planner signs for the submitter itself
  tenant: "acme",
  sid: "s-workflow",
  contract: { id: "read-only-analysis" },
  code: sha256(CODE),
  input: sha256(JSON.stringify(INPUT)),
  iat: now(),
  nbf: now(),
  exp: now() + 60,
  jti: crypto.randomUUID(),
  ...overrides,
});
async function sign(payload: JWTPayload, key = acmePlanner, header: Record<string, unknown> = {}): Promise<string> {
  return await new SignJWT(payload)
    .setProtectedHeader({ alg: key.privateJwk.alg, kid: key.privateJwk.kid, typ: TASK_TYPE, ...header })
    .sign(await importJWK(key.privateJwk, key.privateJwk.alg));
}

const submitter = { tenant: "acme", actor: "workflow-service", session: "s-workflow" };
async function submit(task: string, body: Record<string, unknown> = {}, identity = submitter): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}/v1/tasks`, {
    method: "POST",
    headers: { authorization: `Bearer ${await server.token(identity)}`, "content-type": "application/json" },
    body: JSON.stringify({ contract: "read-only-analysis", task, code: CODE, input: INPUT, ...body }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
async function recordsOf(runId: string, identity = submitter): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${server.url}/v1/sessions/${identity.session}/evidence?limit=500`, {
    headers: { authorization: `Bearer ${await server.token(identity)}` },
  });
  return ((await response.json()) as { records: Array<Record<string, unknown>> }).records.filter((r) => r.runId === runId);
}

describe("POST /v1/tasks", () => {
  it("runs a planner-signed task after policy allows it and answers with the result", async () => {
    const { status, body } = await submit(await sign(claims()));
    expect(status).toBe(200);
    expect(body).toMatchObject({ termination: "completed", result: { doubled: 42 }, logs: [{ level: "log", message: "ran" }], decision: { outcome: "allow" } });
    const [started, finished] = await recordsOf(body.runId as string);
    expect(started).toMatchObject({
      kind: "run.started",
      actor: "workflow-service",
      intent: { source: "planner", planner: "acme-planner", kid: acmePlanner.publicJwk.kid, verdict: "accepted" },
      task: { verdict: "accepted" },
    });
    expect(finished).toMatchObject({ termination: "completed" });
  });

  it("still applies policy to a planner's task", async () => {
    const { status, body } = await submit(await sign(claims()), { dataClass: "restricted" });
    expect(status).toBe(403);
    expect(body).toMatchObject({
      termination: "denied",
      error: { code: "policy_denied" },
      decision: { reasons: ["data_class_not_allowed", "data_class_above_contract"] },
    });
  });

  it("answers a malformed body with 400 and no run", async () => {
    const response = await fetch(`${server.url}/v1/tasks`, {
      method: "POST",
      headers: { authorization: `Bearer ${await server.token(submitter)}` },
      body: "{",
    });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "bad_request" } });
  });

  it("needs a bearer token", async () => {
    const response = await fetch(`${server.url}/v1/tasks`, { method: "POST", body: "{}" });
    expect(response.status).toBe(401);
  });
});

describe("hardening: signed-task attacks over POST /v1/tasks", () => {
  const unsigned = (payload: JWTPayload) =>
    `${base64url.encode(JSON.stringify({ alg: "none", typ: TASK_TYPE }))}.${base64url.encode(JSON.stringify(payload))}.`;

  it.each<[string, () => Promise<string>, Record<string, unknown>, string]>([
    ["alg: none", async () => unsigned(claims()), {}, "algorithm_not_allowed"],
    [
      "HS256 signed with the planner's public key (algorithm confusion)",
      async () =>
        new SignJWT(claims())
          .setProtectedHeader({ alg: "HS256", kid: acmePlanner.publicJwk.kid, typ: TASK_TYPE })
          .sign(new TextEncoder().encode(JSON.stringify(acmePlanner.publicJwk))),
      {},
      "algorithm_not_allowed",
    ],
    [
      "the wrong key under a trusted kid",
      async () => {
        // same algorithm, another key, the trusted planner's kid
        const impostor = await newKeyPair("EdDSA");
        return sign(claims(), { ...impostor, privateJwk: { ...impostor.privateJwk, kid: acmePlanner.publicJwk.kid } });
      },
      {},
      "signature_invalid",
    ],
    ["an unknown kid", async () => sign(claims(), await newKeyPair("EdDSA")), {}, "key_unknown"],
    ["an expired task", async () => sign(claims({ iat: now() - 100, nbf: now() - 100, exp: now() - 30 })), {}, "task_expired"],
    ["a task not yet valid", async () => sign(claims({ nbf: now() + 30 })), {}, "task_not_yet_valid"],
    ["a task issued beyond the allowed clock skew", async () => sign(claims({ iat: now() + 30 })), {}, "issued_in_future"],
    [
      "a payload edited after signing",
      async () => {
        const [header, , signature] = (await sign(claims())).split(".");
        return `${header}.${base64url.encode(JSON.stringify(claims({ contract: { id: "read-only-analysis" }, sub: "someone-else" })))}.${signature}`;
      },
      {},
      "signature_invalid",
    ],
    ["code swapped after signing", async () => sign(claims()), { code: "export default () => 'swapped'" }, "code_mismatch"],
    ["input swapped after signing", async () => sign(claims()), { input: { n: 1000 } }, "input_mismatch"],
    ["a task for another tenant", async () => sign(claims({ iss: "any-planner", tenant: "globex" }), anyPlanner), {}, "tenant_mismatch"],
    ["a planner not trusted for the tenant", async () => sign(claims({ tenant: "acme" })), {}, "planner_not_trusted"],
    ["a task signed for another subject than the submitter", async () => sign(claims({ sub: "admin" })), {}, "subject_mismatch"],
  ])("refuses %s: nothing runs and the evidence says why", async (name, makeTask, body, reason) => {
    // the untrusted-planner case submits for globex with a key trusted only for acme
    const identity = name.startsWith("a planner not trusted") ? { tenant: "globex", actor: "workflow-service", session: "s-globex" } : submitter;
    const task = name.startsWith("a planner not trusted") ? await sign(claims({ tenant: "globex", sid: "s-globex" })) : await makeTask();
    const { status, body: answer } = await submit(task, body, identity);
    expect(status).toBe(403);
    expect(answer).toMatchObject({ termination: "denied", error: { code: "task_rejected", message: expect.stringContaining(reason) }, logs: [] });
    const [started, finished] = await recordsOf(answer.runId as string, identity);
    expect(started).toMatchObject({ kind: "run.started", intent: { source: "planner", verdict: reason }, decision: null, task: null });
    expect(finished).toMatchObject({ termination: "denied", error: { code: "task_rejected" }, latencyMs: { start: null, exec: null } });
  });

  it("refuses a replayed task: the second submission runs nothing", async () => {
    const task = await sign(claims());
    const first = await submit(task);
    expect(first.body).toMatchObject({ termination: "completed" });
    const second = await submit(task);
    expect(second.status).toBe(403);
    expect(second.body).toMatchObject({ termination: "denied", error: { code: "task_rejected", message: expect.stringContaining("task_replayed") } });
    const [started] = await recordsOf(second.body.runId as string);
    expect(started).toMatchObject({ intent: { verdict: "task_replayed" } });
  });

  it("refuses the same task replayed through another session of the tenant", async () => {
    const task = await sign(claims());
    expect((await submit(task)).body).toMatchObject({ termination: "completed" });
    const other = { ...submitter, session: "s-elsewhere" };
    const { body } = await submit(task, {}, other);
    expect(body).toMatchObject({ error: { code: "task_rejected", message: expect.stringContaining("session_mismatch") } });
  });
});

describe("GET /.well-known/jwks.json", () => {
  it("publishes the public keys that sign tasks and evidence exports, and nothing private", async () => {
    const response = await fetch(`${server.url}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    const { keys } = (await response.json()) as { keys: Array<Record<string, unknown>> };
    expect(keys).toHaveLength(2);
    for (const key of keys) {
      expect(key).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig", kid: expect.any(String) });
      expect(key).not.toHaveProperty("d");
    }
    expect(new Set(keys.map((k) => k.kid)).size).toBe(2);
  });
});
