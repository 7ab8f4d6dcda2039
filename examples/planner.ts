// A workflow planner: signs a task with the local planner key (trusted for every
// tenant by `npm start`, never in production) and submits it to POST /v1/tasks with a
// service's bearer token for the same tenant and session. Run it against `npm start`:
//
//   npm run example:planner
//   npm run example:planner -- --url http://127.0.0.1:9000
import { createHash } from "node:crypto";
import { parseArgs } from "node:util";
import { importJWK, SignJWT } from "jose";
import { ensureDevKey, ensureKey } from "../src/local/dev-keys.ts";
import { localAuthSettings, mintToken } from "../src/local/mint-token.ts";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: `http://127.0.0.1:${process.env.PORT ?? 8787}` },
    tenant: { type: "string", default: "acme" },
  },
});
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

// 1. The service that submits: its own token, its own session.
const service = await mintToken({ key: await ensureDevKey(), ...(await localAuthSettings()), tenant: values.tenant, actor: "nightly-report", ttlSeconds: 600 });

// 2. What to run, and the planner's signature over exactly that.
const code = "export default async (input) => ({ openIncidents: input.incidents.filter((i) => i.open).length })";
const input = {
  incidents: [
    { id: 1, open: true },
    { id: 2, open: false },
    { id: 3, open: true },
  ],
};
const planner = await ensureKey("planner");
const now = Math.floor(Date.now() / 1000);
const task = await new SignJWT({
  sub: "nightly-report",
  tenant: values.tenant,
  sid: service.session,
  contract: { id: "read-only-analysis" },
  code: sha256(code),
  input: sha256(JSON.stringify(input)), // canonical JSON (RFC 8785); this object's keys are already in order
  dataClass: "internal",
})
  .setProtectedHeader({ alg: planner.privateJwk.alg, kid: planner.privateJwk.kid, typ: "agent-exec-task+jwt" })
  .setIssuer("local-planner")
  .setAudience("agent-exec/execution")
  .setIssuedAt(now)
  .setNotBefore(now)
  .setExpirationTime(now + 60)
  .setJti(crypto.randomUUID())
  .sign(await importJWK(planner.privateJwk, planner.privateJwk.alg));

// 3. Submit it.
const response = await fetch(`${values.url}/v1/tasks`, {
  method: "POST",
  headers: { authorization: `Bearer ${service.token}`, "content-type": "application/json" },
  body: JSON.stringify({ contract: "read-only-analysis", task, code, input }),
});
const run = (await response.json()) as { runId: string; termination: string; result?: unknown; policyHash: string; error?: { code: string } };
console.log(`HTTP ${response.status} ${run.termination} result=${JSON.stringify(run.result ?? run.error)} policy=${run.policyHash}`);
if (run.termination !== "completed") process.exitCode = 1;

// 4. The same signed task again is a replay: refused, nothing runs.
const again = await fetch(`${values.url}/v1/tasks`, {
  method: "POST",
  headers: { authorization: `Bearer ${service.token}`, "content-type": "application/json" },
  body: JSON.stringify({ contract: "read-only-analysis", task, code, input }),
});
console.log(`replay: HTTP ${again.status} ${((await again.json()) as { error?: { message: string } }).error?.message}`);
// a replay that ran would be a hole: say so in the exit code
if (again.ok) process.exitCode = 1;
