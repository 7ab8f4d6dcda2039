// The local supervisor keeps the server up whatever happens to its runtime processes: each
// of them SIGKILLed in turn during a burst is replaced, the server serves again within 5 s,
// every call gets an answer, and no accepted call is missing from the evidence. A data file
// made invalid while serving is refused at the door until it is fixed, and nothing sent
// meanwhile runs later. No secret is on any process's command line or in its environment.
import { execFileSync } from "node:child_process";
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureKey } from "../../src/local/dev-keys.ts";
import { descendants, processTable } from "../../src/local/process-table.ts";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { answerOf, sessionRecords, toolCallBody, toolCallHeaders } from "../helpers/mcp-http.ts";

const WALL_MS = 2_000;
const METRICS_TOKEN = `metrics-${crypto.randomUUID()}-${crypto.randomUUID()}`;
const EGRESS_SECRET = `egress-${crypto.randomUUID()}`;
let server: LocalServer;
let dirs: { CONTRACTS_DIR: string; POLICY_DIR: string };
const tenant = {
  phases: [1],
  roles: ["auditor"],
  budget: { interactive: { maxInFlight: 32, queueMax: 0 }, batch: { maxInFlight: 1, queueMax: 0 }, downgradeInFlight: 0 },
  teams: { all: { members: ["*"], grants: [{ contract: "steady-probe", maxDataClass: "internal" }] } },
};

beforeAll(async () => {
  const probe = readOnlyContract("steady-probe", "steady_probe", { limits: { wallMs: WALL_MS } });
  dirs = dataDirs({ "steady-probe": probe }, { tenants: { acme: tenant, globex: tenant, watcher: tenant } });
  server = await startLocalServer({
    // three sandbox processes whatever the machine's cores (the default on two)
    env: { ...dirs, METRICS_TOKEN, EGRESS_TEST_TOKEN: EGRESS_SECRET, EVIDENCE_RECONCILE_GRACE_MS: "1000", SANDBOX_PROCESSES: "3" },
  });
}, 180_000);

afterAll(async () => {
  await server?.stop();
});

/** The server's runtime processes by role: each runtime's wrangler, its proxy workerd and its user workerd. */
function runtimeProcesses(): Map<string, number> {
  const rows = processTable();
  const below = descendants(rows, [server.pid]);
  const found = new Map<string, number>();
  for (const wrangler of rows.filter((r) => below.has(r.pid) && r.args.includes("wrangler-dist/cli.js dev"))) {
    const name = /runtime\/([^/]+)\/wrangler\.json/.exec(wrangler.args)?.[1] ?? "?";
    const port = /--port (\d+)/.exec(wrangler.args)?.[1];
    found.set(`${name} wrangler`, wrangler.pid);
    for (const workerd of rows.filter((r) => r.ppid === wrangler.pid && /workerd\S*\s+serve/.test(r.args))) {
      found.set(`${name} ${workerd.args.includes(`entry=127.0.0.1:${port}`) ? "proxy" : "user"} workerd`, workerd.pid);
    }
  }
  return found;
}

/** A session's evidence; none at all when nothing of it was ever recorded (the route answers 404 then). */
async function evidenceOf(tenant: string, session: string): Promise<Array<{ kind: string; runId: string; termination?: string }>> {
  const token = await server.token({ tenant, session, actor: "auditor", roles: ["auditor"] });
  const first = await fetch(`${server.url}/v1/sessions/${session}/evidence?limit=1`, { headers: { authorization: `Bearer ${token}` } });
  if (first.status === 404) return [];
  return await sessionRecords(server.url, token, session);
}

type Answer = { status: number; runId?: string; termination?: string; code?: string; ms: number };

/** One tools/call as raw HTTP; whatever comes back (a tool result or an HTTP error) is an answer. */
async function call(token: string, id: number): Promise<Answer> {
  const started = Date.now();
  const code = "export default async () => { await new Promise((r) => setTimeout(r, 300)); return 'ok'; }";
  const response = await fetch(server.mcpUrl, {
    method: "POST",
    headers: toolCallHeaders(token),
    body: toolCallBody("steady_probe", { code }, id),
    // no call may wait past its deadline + 5 s
    signal: AbortSignal.timeout(WALL_MS + 2_000 + 5_000),
  });
  const body = answerOf<{ runId: string; termination: string; error?: { code: string } }>(await response.text());
  const envelope = body?.result?.structuredContent;
  return {
    status: response.status,
    ms: Date.now() - started,
    ...(envelope ? { runId: envelope.runId, termination: envelope.termination, code: envelope.error?.code } : { code: body?.error?.code }),
  };
}

describe("supervision", () => {
  it("replaces each runtime process SIGKILLed during a burst: every call answered, serving again within 5 s, no accepted call missing", async () => {
    const victims = [...runtimeProcesses().keys()].sort();
    const watcher = await server.token({ tenant: "watcher", actor: "probe", session: "s-watcher" });
    // a main runtime and three sandbox runtimes, each a wrangler with its proxy and user workerd
    expect(victims).toHaveLength(12);
    const sessions: Array<{ tenant: string; session: string; answers: Answer[] }> = [];
    const report: string[] = [];
    for (const [round, victim] of victims.entries()) {
      const rounds = ["acme", "globex"].map((t) => ({ tenant: t, session: `s-kill-${round}-${t}` }));
      const tokens = await Promise.all(rounds.map((r) => server.token({ ...r, actor: "burst" })));
      const burst = tokens.flatMap((token) => Array.from({ length: 15 }, (_, n) => call(token, n)));
      await new Promise((resolve) => setTimeout(resolve, 150));
      const pid = runtimeProcesses().get(victim);
      expect(pid, `${victim} is running before round ${round}`).toBeDefined();
      const killedAt = Date.now();
      process.kill(pid as number, "SIGKILL");
      // a third tenant's calls from the kill on, one after another, until one completes
      const back = until(
        "the server to serve again",
        async () => {
          const answer = await call(watcher, 999);
          return answer.termination === "completed" ? Date.now() : undefined;
        },
        20_000,
      );
      const answers = await Promise.all(burst.map((p) => p.catch((error: unknown) => ({ status: 0, code: String(error), ms: -1 }) as Answer)));
      // every call got an answer: a tool result or an HTTP error, none left hanging
      expect(answers.filter((a) => a.status === 0)).toEqual([]);
      const servedAt = await back;
      report.push(
        `${victim}: serving again ${servedAt - killedAt} ms after the kill; ${answers.filter((a) => a.termination === "completed").length}/30 completed`,
      );
      // the next round starts on a whole stack again: every runtime process back
      await until("every runtime process to run again", async () => (runtimeProcesses().size === 12 ? true : undefined), 20_000);
      expect(servedAt - killedAt, `${victim}: serving again`).toBeLessThan(5_000);
      for (const [i, r] of rounds.entries()) sessions.push({ ...r, answers: answers.slice(i * 15, i * 15 + 15) });
    }
    console.log(report.join("\n"));

    // the evidence: every run that started was closed (the ledger's alarm closes the ones the kill cut off),
    // and every call answered with a run is there with that termination
    for (const { tenant, session, answers } of sessions) {
      const records = await until(
        `every run of ${session} to be closed`,
        async () => {
          const list = await evidenceOf(tenant, session);
          const started = list.filter((r) => r.kind === "run.started").map((r) => r.runId);
          const finished = new Set(list.filter((r) => r.kind === "run.finished").map((r) => r.runId));
          return started.every((id) => finished.has(id)) ? list : undefined;
        },
        30_000,
      );
      const finishes = new Map(records.filter((r) => r.kind === "run.finished").map((r) => [r.runId, r.termination]));
      for (const answer of answers.filter((a) => a.runId)) expect(finishes.get(answer.runId as string), `${session} ${answer.runId}`).toBe(answer.termination);
    }
  }, 300_000);

  it("refuses every request within a second while a policy file is invalid, and runs nothing of them once it is fixed", async () => {
    const file = join(dirs.POLICY_DIR, "tenants.json");
    const good = readFileSync(file, "utf8");
    const identity = { tenant: "acme", actor: "alice", session: "s-while-broken" };
    const token = await server.token(identity);
    const probe = await server.token({ ...identity, session: "s-probe" });
    writeFileSync(file, "{ not json");
    try {
      await until("the server to notice", async () => ((await call(probe, 1)).code === "data_invalid" ? true : undefined), 2_000);
      for (let i = 0; i < 5; i++) {
        const answer = await call(token, 10 + i);
        expect(answer).toMatchObject({ status: 503, code: "data_invalid" });
        expect(answer.ms).toBeLessThan(1_000);
      }
      const refused = await fetch(`${server.url}/v1/sessions/s-while-broken/evidence`, { headers: { authorization: `Bearer ${token}` } });
      expect(refused.status).toBe(503);
      expect(await refused.json()).toMatchObject({ error: { code: "data_invalid", message: expect.stringContaining("tenants.json") } });
    } finally {
      writeFileSync(file, good);
    }
    await until(
      "the server to serve again",
      async () => ((await call(await server.token({ ...identity, session: "s-after" }), 1)).termination === "completed" ? true : undefined),
      20_000,
    );
    // nothing sent while it was broken ran, then or later
    expect(await evidenceOf("acme", "s-while-broken")).toEqual([]);
  });

  it("applies a valid change of the policy by restarting the main runtime on it", async () => {
    const file = join(dirs.POLICY_DIR, "tenants.json");
    const policy = JSON.parse(readFileSync(file, "utf8")) as { tenants: Record<string, unknown> };
    const newcomer = await server.token({ tenant: "initech", actor: "ivan", session: "s-newcomer" });
    expect((await call(newcomer, 1)).code).toBe("policy_denied");
    writeFileSync(file, JSON.stringify({ tenants: { ...policy.tenants, initech: tenant } }, null, 2));
    await until("the new tenant to be served", async () => ((await call(newcomer, 2)).termination === "completed" ? true : undefined), 30_000);
  });

  it("puts no secret on any process's command line or in the runtimes' environment, and keeps them in files only this user reads", async () => {
    const keys = await Promise.all((["taskSigning", "evidenceSigning", "identity", "planner"] as const).map((name) => ensureKey(name, server.stateDir)));
    const runtimeDir = join(server.stateDir, "runtime");
    const mainVars = readFileSync(join(runtimeDir, "agent-exec", ".dev.vars"), "utf8");
    const watchdogToken = /LOCAL_WATCHDOG_TOKEN='([^']+)'/.exec(mainVars)?.[1];
    expect(watchdogToken).toBeDefined();
    const sandboxToken = /LOCAL_SANDBOX_TOKEN='([^']+)'/.exec(mainVars)?.[1];
    expect(sandboxToken).toBeDefined();
    const secrets = [...keys.map((key) => String(key.privateJwk.d)), METRICS_TOKEN, EGRESS_SECRET, watchdogToken as string, sandboxToken as string];
    const commandLines = execFileSync("ps", ["-eo", "args"], { encoding: "utf8" });
    expect(secrets.filter((secret) => commandLines.includes(secret))).toEqual([]);
    for (const pid of runtimeProcesses().values()) {
      const environment = readFileSync(`/proc/${pid}/environ`, "utf8");
      expect(
        secrets.filter((secret) => environment.includes(secret)),
        `environment of ${pid}`,
      ).toEqual([]);
    }
    expect(statSync(runtimeDir).mode & 0o777).toBe(0o700);
    for (const name of readdirSync(runtimeDir).filter((n) => n.startsWith("agent-exec"))) {
      expect(statSync(join(runtimeDir, name, ".dev.vars")).mode & 0o777).toBe(0o600);
    }
    // the sandbox processes hold no signing key and no token
    const sandboxVars = readFileSync(join(runtimeDir, "agent-exec-sandbox-0", ".dev.vars"), "utf8");
    expect([keys[0]?.privateJwk.d, keys[1]?.privateJwk.d, METRICS_TOKEN, watchdogToken].filter((s) => s && sandboxVars.includes(s))).toEqual([]);
    expect(sandboxVars).toContain(EGRESS_SECRET);
    // the Worker has no local control route left to reach, with or without what ps shows
    const reconcile = await fetch(`${server.url}/__local/reconcile`, { method: "POST", body: "{}" });
    expect(reconcile.status).toBe(404);
  });
});
