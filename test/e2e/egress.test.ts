// The egress gateway and capability bindings end to end, against real upstreams on
// 127.0.0.1: what is allowed arrives, everything else is denied and recorded, secrets
// are injected but never visible to the code, and capabilities stay within their scope.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, type McpSession } from "../helpers/mcp-clients.ts";
import { answerOf, toolCallHeaders } from "../helpers/mcp-http.ts";
import { ALL_SECRETS, leakedIn, SECRET_URL_PATH } from "../helpers/secrets.ts";
import { type HttpUpstream, startHttpUpstream, startTcpEcho, type TcpEcho } from "../helpers/upstreams.ts";

const PROBE_TOKEN = "probe-secret-7d1f0c";
const TRACKER_TOKEN = "tracker-secret-55ab9e";

let upstream: HttpUpstream;
let echo: TcpEcho;
let server: LocalServer;
let session: McpSession;
let scopedSession: McpSession;

const probeContract = (port: number) => ({
  id: "egress-probe",
  version: "1.0.0",
  tool: "probe_egress",
  title: "Egress probe",
  description: "Test contract: reaches the local upstream under explicit rules.",
  class: "read-only",
  phase: 1,
  inputSchema: { type: "object" },
  limits: { wallMs: 5000, subRequests: 20 },
  dataClass: { max: "confidential", default: "internal" },
  actions: ["read"],
  egress: [
    { host: "127.0.0.1", protocol: "http", ports: [port], methods: ["GET", "POST"], paths: ["/allowed/"] },
    {
      // https, as every rule that injects a secret must be; EGRESS_RESOLVE sends it to the local upstream
      host: "secrets.example.test",
      protocol: "https",
      paths: ["/allowed/"],
      inject: { header: "authorization", secret: "EGRESS_PROBE_TOKEN", format: "Bearer {secret}" },
    },
    { host: "*.wild.example.test", protocol: "http", ports: [port], paths: ["/allowed/"] },
  ],
});
const tcpContract = (port: number) => ({
  id: "tcp-probe",
  version: "1.0.0",
  tool: "probe_tcp",
  title: "TCP probe",
  description: "Test contract: may open one TCP port on 127.0.0.1.",
  class: "read-only",
  phase: 1,
  inputSchema: { type: "object" },
  limits: { subRequests: 5 },
  actions: ["read"],
  egress: [{ host: "127.0.0.1", protocol: "tcp", ports: [port] }],
});
/** subRequests: 50 and the default 5 s wall clock, as the attack that put 3,718 requests on an upstream under that limit. */
const floodContract = (port: number) => ({
  id: "egress-flood",
  version: "1.0.0",
  tool: "flood_egress",
  title: "Egress flood",
  description: "Test contract: may send 50 requests to the local upstream per run.",
  class: "read-only",
  phase: 1,
  inputSchema: { type: "object" },
  limits: { wallMs: 5000, subRequests: 50 },
  actions: ["read"],
  egress: [{ host: "127.0.0.1", protocol: "http", ports: [port], paths: ["/allowed/"] }],
});
const grant = (contract: string, actions: string[] = ["*"], maxDataClass = "confidential") => ({ contract, maxDataClass, actions });

beforeAll(async () => {
  upstream = await startHttpUpstream(TRACKER_TOKEN);
  echo = await startTcpEcho();
  const origin = `http://127.0.0.1:${upstream.port}`;
  const dirs = dataDirs(
    { "egress-probe": probeContract(upstream.port), "tcp-probe": tcpContract(echo.port), "egress-flood": floodContract(upstream.port) },
    {
      tenants: {
        acme: {
          roles: ["store_admin"],
          phases: [1, 2, 3],
          teams: {
            everyone: {
              members: ["*"],
              grants: [
                grant("read-only-analysis", ["read"]),
                grant("egress-probe"),
                grant("tcp-probe"),
                grant("egress-flood"),
                grant("controlled-mutation", ["*"], "internal"),
              ],
            },
          },
        },
        globex: {
          roles: ["store_admin"],
          phases: [1, 2],
          teams: {
            commenters: { members: ["*"], grants: [grant("controlled-mutation", ["tracker.comment"], "internal"), grant("read-only-analysis", ["read"])] },
          },
        },
      },
    },
  );
  server = await startLocalServer({
    env: {
      ...dirs,
      EGRESS_PROBE_TOKEN: PROBE_TOKEN,
      EGRESS_TRACKER_TOKEN: TRACKER_TOKEN,
      EGRESS_RESOLVE: JSON.stringify({ "secrets.example.test": origin, "a.wild.example.test": origin, "tracker.example.com": origin }),
    },
  });
  session = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token({ tenant: "acme", actor: "alice", session: "s-egress" }));
  scopedSession = await connectClient(CLIENT_KINDS[0], server.mcpUrl, await server.token({ tenant: "globex", actor: "gina", session: "s-scoped" }));
});
afterAll(async () => {
  await session?.close();
  await scopedSession?.close();
  await server?.stop();
  await upstream?.close();
  await echo?.close();
});

type Activity = {
  kind: string;
  decision: string;
  reason: string | null;
  destination?: string;
  status?: number | null;
  drift?: boolean | null;
  injected?: string[];
  bytesIn?: number;
  capability?: string;
  method?: string;
};

async function finishOf(runId: string, tenant = "acme", sid = "s-egress"): Promise<Record<string, unknown>> {
  const token = await server.token({ tenant, actor: "auditor", session: sid });
  const records = (
    (await (await fetch(`${server.url}/v1/sessions/${sid}/evidence?limit=500`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      records: Array<Record<string, unknown>>;
    }
  ).records;
  const finish = records.find((r) => r.runId === runId && r.kind === "run.finished");
  if (!finish) throw new Error(`no finish record for ${runId}`);
  return finish;
}
async function startOf(runId: string): Promise<Record<string, unknown>> {
  const token = await server.token({ tenant: "acme", actor: "auditor", session: "s-egress" });
  const records = (
    (await (await fetch(`${server.url}/v1/sessions/s-egress/evidence?limit=500`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
      records: Array<Record<string, unknown>>;
    }
  ).records;
  const start = records.find((r) => r.runId === runId && r.kind === "run.started");
  if (!start) throw new Error(`no start record for ${runId}`);
  return start;
}
const egressOf = (finish: Record<string, unknown>) => (finish.activity as { egress: { attempts: Activity[] } }).egress.attempts;

async function probe(code: string, args: Record<string, unknown> = {}, tool = "probe_egress", on = session) {
  const result = await on.callTool(tool, { code, ...args });
  const structured = result.structuredContent as { runId: string; termination: string; result?: unknown; error?: { code: string; message: string } };
  return { ...structured, finish: await finishOf(structured.runId, on === session ? "acme" : "globex", on === session ? "s-egress" : "s-scoped") };
}

const U = () => `http://127.0.0.1:${upstream.port}`;

describe("egress gateway", () => {
  it("lets an allowed request through and records destination, status, bytes and duration", async () => {
    const run = await probe(
      `export default async () => { const r = await fetch("${U()}/allowed/echo", { method: "POST", body: "hello" }); return { status: r.status, body: await r.json() }; }`,
    );
    expect(run).toMatchObject({ termination: "completed", result: { status: 200, body: { method: "POST", body: "hello" } } });
    const [attempt] = egressOf(run.finish);
    expect(attempt).toMatchObject({ kind: "egress", decision: "allowed", destination: `http://127.0.0.1:${upstream.port}`, status: 200, drift: null });
    expect(attempt?.bytesIn).toBeGreaterThan(0);
  });

  it.each([
    "http://0x7f000002:PORT/allowed/echo",
    "http://2130706434:PORT/allowed/echo",
    "http://127.0.0.2:PORT/allowed/echo",
    "http://0177.0.0.2:PORT/allowed/echo",
    "http://10.0.0.1/allowed/echo",
    "http://192.168.1.10:PORT/allowed/echo",
    "http://169.254.169.254/latest/meta-data/",
    "http://0xa9fea9fe/latest/meta-data/",
    "http://[::1]:PORT/allowed/echo",
    "http://[::ffff:127.0.0.1]:PORT/allowed/echo",
    "http://[fd00::1]:PORT/allowed/echo",
    "http://[fe80::1]:PORT/allowed/echo",
    "http://localhost:PORT/allowed/echo",
    "http://localhost.:PORT/allowed/echo",
    "http://app.localhost:PORT/allowed/echo",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://METADATA.google.internal./computeMetadata/v1/",
  ])("denies %s (address_not_allowed) before anything leaves", async (template) => {
    const before = upstream.seen.length;
    const url = template.replace("PORT", String(upstream.port));
    const run = await probe(`export default async () => { const r = await fetch("${url}"); return [r.status, r.headers.get("x-egress-denied")]; }`);
    expect(run.result).toEqual([403, "address_not_allowed"]);
    expect(egressOf(run.finish)).toMatchObject([{ decision: "denied", reason: "address_not_allowed" }]);
    expect(upstream.seen.length).toBe(before);
  });

  it.each<[string, string, string]>([
    ["another path on the allowed host", "/private", "path_not_allowed"],
    ["an encoded traversal", "/allowed/%2e%2e/private", "path_not_allowed"],
    ["an unlisted host", "http://evil.example.test/allowed/echo", "host_not_allowed"],
    ["another port", "http://127.0.0.1:1/allowed/echo", "port_not_allowed"],
    ["https where only http is allowed", "https://a.wild.example.test/allowed/echo", "host_not_allowed"],
    ["http where only https is allowed (the rule injects a secret)", "http://secrets.example.test/allowed/echo", "host_not_allowed"],
  ])("denies %s", async (_case, target, reason) => {
    const url = target.startsWith("/") ? `${U()}${target}` : target;
    const run = await probe(`export default async () => { const r = await fetch("${url}"); return [r.status, r.headers.get("x-egress-denied")]; }`);
    expect(run.result).toEqual([403, reason]);
  });

  it("denies a method the rule does not list", async () => {
    const run = await probe(`export default async () => (await fetch("${U()}/allowed/echo", { method: "DELETE" })).headers.get("x-egress-denied")`);
    expect(run.result).toBe("method_not_allowed");
  });

  it("matches a wildcard rule for a subdomain", async () => {
    const run = await probe(`export default async () => (await fetch("http://a.wild.example.test:${upstream.port}/allowed/echo")).status`);
    expect(run.result).toBe(200);
  });

  it("denies credentials in the URL, which never reach the upstream", async () => {
    const before = upstream.seen.length;
    const run = await probe(
      `export default async () => { const r = await fetch("http://user:pw@127.0.0.1:${upstream.port}/allowed/echo"); return r.headers.get("x-egress-denied"); }`,
    );
    expect(run.result).toBe("userinfo_in_url");
    expect(upstream.seen.length).toBe(before);
  });

  it("denies credentials in the URL even through the fetch the task reaches behind the harness's back", async () => {
    const before = upstream.seen.length;
    const run = await probe(
      `export default async () => {
        const proto = Object.getPrototypeOf(globalThis);
        let replaced = "no";
        try { globalThis.fetch = () => null; replaced = "global"; } catch {}
        try { Object.defineProperty(proto, "fetch", { value: () => null }); replaced = "prototype"; } catch {}
        const r = await proto.fetch.call(globalThis, "http://user:pw@127.0.0.1:${upstream.port}/allowed/echo");
        return [r.headers.get("x-egress-denied"), replaced];
      }`,
    );
    expect(run.result).toEqual(["userinfo_in_url", "no"]);
    expect(egressOf(run.finish)).toMatchObject([{ decision: "denied", reason: "userinfo_in_url" }]);
    expect(upstream.seen.length).toBe(before);
  });

  it("spells a host one way for matching and resolving: a trailing dot and capitals still reach the pinned upstream", async () => {
    const before = upstream.seen.length;
    const run = await probe(`export default async () => (await fetch("https://SECRETS.example.test./allowed/echo")).status`);
    expect(run.result).toBe(200);
    expect(upstream.seen.length).toBe(before + 1);
    expect(egressOf(run.finish)).toMatchObject([{ decision: "allowed", destination: "https://secrets.example.test:443", injected: ["authorization"] }]);
  });

  it("checks every redirect hop again: a redirect to a private address or another path is denied", async () => {
    for (const [to, reason] of [
      ["http://10.0.0.1/", "address_not_allowed"],
      [`${U()}/private`, "path_not_allowed"],
      ["http://169.254.169.254/latest/meta-data/", "address_not_allowed"],
    ] as const) {
      const run = await probe(
        `export default async () => { const r = await fetch("${U()}/allowed/redirect?to=${encodeURIComponent(to)}"); return [r.status, r.headers.get("x-egress-denied")]; }`,
      );
      expect(run.result).toEqual([403, reason]);
      expect(egressOf(run.finish)).toMatchObject([
        { decision: "allowed", status: 302 },
        { decision: "denied", reason },
      ]);
    }
  });

  it("strips hop-by-hop, forwarding, method-override and credential headers the code tried to smuggle", async () => {
    const run = await probe(`export default async () => {
      const r = await fetch("${U()}/allowed/echo", { headers: {
        authorization: "Bearer stolen", cookie: "session=stolen", "proxy-authorization": "Basic eA==", "x-api-key": "stolen",
        connection: "x-smuggle", "x-smuggle": "1", "cf-connecting-ip": "1.2.3.4", "x-agent-exec-run": "forged", "x-kept": "yes",
        "x-forwarded-host": "admin.internal", "x-forwarded-for": "10.0.0.1", forwarded: "for=10.0.0.1;host=admin.internal",
        "x-real-ip": "10.0.0.1", "x-original-url": "/admin", "x-http-method-override": "DELETE", "x-method-override": "DELETE" } });
      return (await r.json()).headers;
    }`);
    const headers = run.result as Record<string, string>;
    for (const name of [
      "authorization",
      "cookie",
      "proxy-authorization",
      "x-api-key",
      "x-smuggle",
      "cf-connecting-ip",
      "x-agent-exec-userinfo",
      "x-forwarded-host",
      "x-forwarded-for",
      "forwarded",
      "x-real-ip",
      "x-original-url",
      "x-http-method-override",
      "x-method-override",
    ])
      expect(headers).not.toHaveProperty(name);
    expect(headers["x-kept"]).toBe("yes");
  });

  it("injects a rule's secret the code cannot read back, and evidence never stores it", async () => {
    const run = await probe(
      `export default async () => { const r = await fetch("https://secrets.example.test/allowed/echo"); const text = await r.text(); return { text, header: [...r.headers].join(";") }; }`,
    );
    const seen = upstream.seen.at(-1);
    expect(seen?.headers.authorization).toBe(`Bearer ${PROBE_TOKEN}`);
    const { text, header } = run.result as { text: string; header: string };
    expect(text).not.toContain(PROBE_TOKEN);
    expect(text).toContain("Bearer [REDACTED]");
    expect(header).not.toContain(PROBE_TOKEN);
    expect(egressOf(run.finish)).toMatchObject([{ decision: "allowed", injected: ["authorization"] }]);
    expect(JSON.stringify(run.finish)).not.toContain(PROBE_TOKEN);
  });

  it("flags attempts outside the declared plan as drift, allowed or not", async () => {
    const run = await probe(
      `export default async () => {
        await fetch("${U()}/allowed/echo");
        await fetch("https://secrets.example.test/allowed/echo");
        await fetch("http://10.0.0.1/");
        return "done";
      }`,
      { plan: { destinations: [`http://127.0.0.1:${upstream.port}`] } },
    );
    expect(egressOf(run.finish).map((a) => [a.decision, a.drift])).toEqual([
      ["allowed", false],
      ["allowed", true],
      ["denied", true],
    ]);
    expect(run.finish).toMatchObject({ activity: { egress: { drift: 2, denied: 1, allowed: 2 } } });
  });

  it("refuses a malformed plan as invalid_arguments", async () => {
    const result = await session.callTool("probe_egress", { code: "export default () => 1", plan: { destinations: ["not a destination!"] } });
    expect(result.structuredContent).toMatchObject({ termination: "denied", error: { code: "invalid_arguments" } });
  });

  it("ends a run that gave up after a denial as egress_denied", async () => {
    const run = await probe(
      `export default async () => { const r = await fetch("http://10.0.0.1/"); if (!r.ok) throw new Error("upstream refused: " + r.headers.get("x-egress-denied")); }`,
    );
    expect(run.termination).toBe("egress_denied");
    expect(run.finish).toMatchObject({ termination: "egress_denied" });
  });

  it("refuses a connect() without a tcp rule before it reaches anything: its opened rejects, and the attempt is recorded", async () => {
    const before = echo.connections();
    const run = await probe(`import { connect } from "cloudflare:sockets";
      export default async () => {
        const socket = connect({ hostname: "127.0.0.1", port: ${echo.port} });
        const opened = await socket.opened.then(() => "opened", (error) => "rejected: " + error.message);
        const closed = await socket.closed.then(() => "closed", (error) => "rejected");
        const wrote = await socket.writable.getWriter().write(new TextEncoder().encode("hi")).then(() => "wrote", () => "write failed");
        return [opened, closed, wrote];
      }`);
    expect(run.result).toEqual([`rejected: connect to 127.0.0.1:${echo.port} refused by the egress gateway: address_not_allowed`, "rejected", "write failed"]);
    // no tcp rule names 127.0.0.1, so the loopback address is refused outright
    expect(egressOf(run.finish)).toMatchObject([{ decision: "denied", reason: "address_not_allowed", destination: `tcp://127.0.0.1:${echo.port}` }]);
    expect(echo.connections()).toBe(before);
  });

  it("passes a connect() that a tcp rule allows", async () => {
    const run = await probe(
      `import { connect } from "cloudflare:sockets";
      export default async () => {
        const socket = connect({ hostname: "127.0.0.1", port: ${echo.port} });
        const info = await socket.opened;
        const w = socket.writable.getWriter(); await w.write(new TextEncoder().encode("ping"));
        const { value } = await socket.readable.getReader().read();
        await socket.close();
        return [new TextDecoder().decode(value), info.remoteAddress];
      }`,
      {},
      "probe_tcp",
    );
    expect(run.result).toEqual(["ping", `127.0.0.1:${echo.port}`]);
    // admitted before opened resolved (its own record comes when the connection is over)
    expect(run.finish).toMatchObject({ activity: { egress: { admitted: 1, denied: 0 } } });
  });
});

describe("trace context", () => {
  const CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
  const call = async (meta: Record<string, unknown> | undefined, headers: Record<string, string> = {}) => {
    const token = await server.token({ tenant: "acme", actor: "alice", session: "s-egress" });
    const response = await fetch(server.mcpUrl, {
      method: "POST",
      headers: { ...toolCallHeaders(token), ...headers },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: {
          name: "probe_egress",
          arguments: {
            code: `export default async () => (await fetch("${U()}/allowed/echo", { headers: { traceparent: "00-${"f".repeat(32)}-${"f".repeat(16)}-01" } })).status`,
          },
          ...(meta ? { _meta: meta } : {}),
        },
      }),
    });
    const run = answerOf<{ runId: string; result: unknown }>(await response.text())?.result?.structuredContent;
    if (!run) throw new Error("no tool result");
    const start = (await startOf(run.runId)) as { trace?: { traceId: string; parentSpanId: string | null; sampled: boolean } };
    return { run, trace: start.trace, sent: upstream.seen.at(-1)?.headers.traceparent as string | undefined };
  };

  it("continues the caller's traceparent from the request's _meta: recorded in the run's start and sent, as a span of its own, on its outbound requests", async () => {
    const { run, trace, sent } = await call({ traceparent: `00-${CALLER_TRACE}-00f067aa0ba902b7-01` });
    expect(run.result).toBe(200);
    expect(trace).toEqual({ traceId: CALLER_TRACE, parentSpanId: "00f067aa0ba902b7", sampled: true });
    // the code's own traceparent is not what leaves: the run's trace is
    expect(sent).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-01$`));
    expect(sent).not.toContain("00f067aa0ba902b7");
  });

  it("takes the HTTP traceparent header when _meta has none, and starts a trace of its own without either", async () => {
    const fromHeader = await call(undefined, { traceparent: `00-${CALLER_TRACE}-b7ad6b7169203331-00` });
    expect(fromHeader.trace).toEqual({ traceId: CALLER_TRACE, parentSpanId: "b7ad6b7169203331", sampled: false });
    expect(fromHeader.sent).toMatch(new RegExp(`^00-${CALLER_TRACE}-[0-9a-f]{16}-00$`));
    const fresh = await call({ traceparent: "not a traceparent" });
    expect(fresh.trace).toMatchObject({ traceId: expect.stringMatching(/^[0-9a-f]{32}$/), parentSpanId: null, sampled: true });
    expect(fresh.trace?.traceId).not.toBe(CALLER_TRACE);
    expect(fresh.sent).toMatch(new RegExp(`^00-${fresh.trace?.traceId}-[0-9a-f]{16}-01$`));
  });
});

describe("secrets in what a run does", () => {
  it("keeps real-format secrets of every detector family out of the evidence and the signed export, the egress URL's path and query included", async () => {
    const run = await probe(`export default async () => {
      console.log(${JSON.stringify(ALL_SECRETS)});
      await fetch("${U()}/allowed/echo${SECRET_URL_PATH}");
      await fetch("http://10.0.0.1${SECRET_URL_PATH}");
      throw new Error(${JSON.stringify(ALL_SECRETS)});
    }`);
    expect(run.termination).toBe("egress_denied");
    const token = await server.token({ tenant: "acme", actor: "auditor", session: "s-egress" });
    const get = async (path: string) => (await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${token}` } })).text();
    const evidence = await get("/v1/sessions/s-egress/evidence?limit=500");
    const exported = await get("/v1/sessions/s-egress/export");
    for (const surface of [evidence, exported]) {
      expect(surface).toContain(run.runId);
      expect(leakedIn(surface)).toEqual([]);
    }
    const paths = egressOf(run.finish).map((a) => (a as Activity & { path: string }).path);
    expect(paths).toHaveLength(2);
    for (const path of paths) expect(path).toMatch(/token=\[REDACTED:[a-z_]+\]&api_key=\[REDACTED:[a-z_]+\]&X-Amz-Signature=\[REDACTED:[a-z_]+\]$/);
  });
});

describe("capability bindings", () => {
  it("lets the tracker capability comment and label through the gateway, with the token the code never sees", async () => {
    const run = await probe(
      `export default async (input, ctx) => {
        const comment = await ctx.env.TRACKER.comment("ISSUE-7", "Investigated: a timeout");
        const labels = await ctx.env.TRACKER.label("ISSUE-7", ["triaged"]);
        return { comment, labels, bindings: Object.keys(ctx.env), fetchedDirectly: (await fetch("https://tracker.example.com/issues/ISSUE-7")).headers.get("x-egress-denied") };
      }`,
      {},
      "mutate_controlled",
    );
    expect(run).toMatchObject({
      termination: "completed",
      result: { comment: { id: 1 }, labels: { labels: ["triaged"] }, bindings: ["TRACKER"], fetchedDirectly: "host_not_allowed" },
    });
    const posts = upstream.seen.filter((r) => r.url.startsWith("/issues/ISSUE-7/"));
    expect(posts.map((r) => [r.method, r.url, r.headers.authorization])).toEqual([
      ["POST", "/issues/ISSUE-7/comments", `Bearer ${TRACKER_TOKEN}`],
      ["POST", "/issues/ISSUE-7/labels", `Bearer ${TRACKER_TOKEN}`],
    ]);
    const activity = run.finish.activity as { capabilities: { calls: Activity[] }; egress: { attempts: Activity[] } };
    expect(activity.capabilities.calls.map((c) => [c.capability, c.method, c.decision])).toEqual([
      ["tracker", "comment", "allowed"],
      ["tracker", "label", "allowed"],
    ]);
    expect(activity.egress.attempts.map((a) => [a.decision, a.injected])).toEqual([
      ["allowed", ["authorization"]],
      ["allowed", ["authorization"]],
      ["denied", []],
    ]);
    expect(JSON.stringify(run.finish)).not.toContain(TRACKER_TOKEN);
  });

  it("refuses an action outside the granted scope with a typed error, and records it", async () => {
    const run = await probe(
      `export default async (input, ctx) => {
        await ctx.env.TRACKER.comment("ISSUE-8", "fine");
        try { await ctx.env.TRACKER.label("ISSUE-8", ["p1"]); return "labelled"; } catch (error) { return error.message; }
      }`,
      {},
      "mutate_controlled",
      scopedSession,
    );
    expect(run.result).toMatch(/^\[action_not_in_scope\] tracker.label needs tracker.label/);
    expect((run.finish.activity as { capabilities: { calls: Activity[] } }).capabilities.calls.map((c) => [c.method, c.decision, c.reason])).toEqual([
      ["comment", "allowed", null],
      ["label", "denied", "action_not_in_scope"],
    ]);
  });

  it("leaves the capability's helpers out of reach over RPC: the code cannot skip the scope check, forge a record, or import the raw env", async () => {
    const before = upstream.seen.length;
    const run = await probe(
      `export default async (input, ctx) => {
        const attempt = async (call) => { try { await call(); return "reached"; } catch (error) { return "refused"; } };
        return {
          request: await attempt(() => ctx.env.TRACKER.request("POST", "issues/ISSUE-9/labels", { labels: ["p1"] })),
          requireAny: await attempt(() => ctx.env.TRACKER.requireAny(["tracker.label"], "label")),
          call: await attempt(() => ctx.env.TRACKER.call("label", async () => "forged")),
          importedEnv: await attempt(async () => { const { env } = await import("cloudflare:workers"); if (!env || !env.TRACKER) throw new Error("none"); }),
        };
      }`,
      {},
      "mutate_controlled",
      scopedSession,
    );
    expect(run.result).toEqual({ request: "refused", requireAny: "refused", call: "refused", importedEnv: "refused" });
    expect(upstream.seen.slice(before).filter((request) => request.url.includes("ISSUE-9"))).toEqual([]);
    expect((run.finish.activity as { capabilities: { calls: Activity[] } }).capabilities.calls).toEqual([]);
  });

  it("serves the tenant's own store read-only and refuses writes and other tenants, recording each call", async () => {
    const seed = (tenant: string, items: unknown) =>
      server
        .token({ tenant, actor: "seed", roles: ["store_admin"] })
        .then((token) =>
          fetch(`${server.url}/v1/store/items`, { method: "POST", headers: { authorization: `Bearer ${token}` }, body: JSON.stringify({ items }) }),
        );
    expect(
      (
        await seed("acme", [
          { kind: "doc", key: "runbooks/deploy", body: { text: "Deploys on Tuesday" } },
          { kind: "metric", key: "errors/1", ts: 1000, body: { value: 3 } },
        ])
      ).status,
    ).toBe(200);
    expect((await seed("globex", [{ kind: "doc", key: "runbooks/deploy", body: { text: "globex secret plan" } }])).status).toBe(200);

    const run = await probe(
      `export default async (input, ctx) => {
        const doc = await ctx.env.DOCS.get("doc", "runbooks/deploy");
        const found = await ctx.env.DOCS.search("Tuesday");
        const points = await ctx.env.DOCS.metrics("errors");
        const refusals = [];
        for (const attempt of [() => ctx.env.DOCS.put("doc", "x", {}), () => ctx.env.DOCS.list("doc", { tenant: "globex" })]) {
          try { await attempt(); refusals.push("allowed"); } catch (error) { refusals.push(error.message.split("]")[0] + "]"); }
        }
        return { text: doc.body.text, found: found.length, points: points.map((p) => p.body.value), refusals, globexVisible: (await ctx.env.DOCS.search("globex")).length };
      }`,
      {},
      "analyze_readonly",
    );
    expect(run.result).toEqual({ text: "Deploys on Tuesday", found: 1, points: [3], refusals: ["[capability_denied]", "[scope_violation]"], globexVisible: 0 });
    const calls = (run.finish.activity as { capabilities: { calls: Activity[] } }).capabilities.calls;
    expect(calls.map((c) => [c.method, c.decision, c.reason])).toEqual([
      ["get", "allowed", null],
      ["search", "allowed", null],
      ["metrics", "allowed", null],
      ["put", "denied", "capability_denied"],
      ["list", "denied", "scope_violation"],
      ["search", "allowed", null],
    ]);
  });

  it("refuses loading the store without the store_admin role", async () => {
    const token = await server.token({ tenant: "acme", actor: "alice" });
    const response = await fetch(`${server.url}/v1/store/items`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}` },
      body: JSON.stringify({ items: [{ kind: "doc", key: "k", body: 1 }] }),
    });
    expect(response.status).toBe(404);
  });
});

// Last in the file: locally workerd does not enforce cpuMs, so a timed-out flood's isolate
// keeps its sandbox process busy for a while after its run (on Cloudflare its CPU limit ends it).
describe("a run's outbound requests are bounded by the run", () => {
  const arrivalsAfter = (since: number, from: number) => upstream.seen.slice(from).filter((r) => r.at > since).length;

  it("lets nothing of a run leave after its finish record: a loop that outlives its deadline is refused run_finished", async () => {
    const before = upstream.seen.length;
    const result = await session.callTool("flood_egress", {
      code: `export default async () => {
        for (;;) { await fetch("${U()}/allowed/echo?loop").catch(() => null); await new Promise((r) => setTimeout(r, 100)); }
      }`,
    });
    const answeredAt = Date.now();
    const run = result.structuredContent as { runId: string; termination: string };
    expect(run.termination, JSON.stringify(run)).toBe("timed_out");
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const sent = upstream.seen.length - before;
    expect(sent).toBeGreaterThan(3);
    expect(arrivalsAfter(answeredAt, before)).toBe(0);
    const finish = await finishOf(run.runId);
    expect((finish.activity as { egress: { admitted: number } }).egress.admitted).toBe(sent);
  });

  it("sends at most limits.subRequests: Promise.all of 10,000 fetches puts 50 on the upstream, the rest refused subrequest_limit and counted", async () => {
    const before = upstream.seen.length;
    const result = await session.callTool("flood_egress", {
      code: `export default async () => {
        const answers = await Promise.all(Array.from({ length: 10000 }, () =>
          fetch("${U()}/allowed/echo").then((r) => r.headers.get("x-egress-denied") ?? String(r.status), (e) => "threw")));
        const counts = {};
        for (const a of answers) counts[a] = (counts[a] ?? 0) + 1;
        return counts;
      }`,
    });
    const answeredAt = Date.now();
    const run = result.structuredContent as { runId: string; termination: string; result?: Record<string, number> };
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const sent = upstream.seen.length - before;
    expect(sent).toBeLessThanOrEqual(50);
    // nothing sent after the answer (half a second for this process to get round to what reached it before)
    expect(arrivalsAfter(answeredAt + 500, before)).toBe(0);
    const finish = await finishOf(run.runId);
    const egress = (finish.activity as { egress: { admitted: number; allowed: number; denied: number; attempts: Activity[] } }).egress;
    // what left was admitted by the ledger first (an admitted request still waiting when the run ended
    // is refused at dispatch); every refusal recorded before the finish is the limit's
    // (on a loaded machine the 5 s deadline may come before all 10,000 were even asked for)
    expect(sent).toBeLessThanOrEqual(egress.admitted);
    expect(egress.attempts.filter((a) => a.decision === "denied").every((a) => a.reason === "subrequest_limit")).toBe(true);
    if (run.termination === "completed") expect(run.result).toEqual({ "200": 50, subrequest_limit: 9950 });
    else expect(run.termination).toBe("timed_out");
  });
});
