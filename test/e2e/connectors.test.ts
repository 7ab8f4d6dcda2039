// Connectors in a run: an HTTP API described as data (connectors/), two of its operations
// granted by a contract, called from sandboxed code as ctx.env.issues.<operation>(args)
// against a real API on 127.0.0.1. Each call is decided (granted, in scope, arguments valid),
// sent through the egress gateway with the credential injected, and recorded.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, type McpSession } from "../helpers/mcp-clients.ts";

const TOKEN = "issues-api-token-7f3a9c2e5b1d8f4a6c0e2b9d";

const ISSUES_CONNECTOR = {
  name: "issues",
  description: "The issue tracker's API.",
  kind: "http",
  baseUrl: "https://issues.example.test/api/",
  operations: {
    listIssues: {
      description: "Issues in a state.",
      effect: "read",
      method: "GET",
      path: "issues",
      query: ["state"],
      arguments: { type: "object", properties: { state: { type: "string", enum: ["open", "closed"] } }, additionalProperties: false },
    },
    addComment: {
      description: "Comments on an issue.",
      effect: "mutate",
      method: "POST",
      path: "issues/{id}/comments",
      arguments: {
        type: "object",
        properties: { id: { type: "string", pattern: "^[0-9]+$" }, body: { type: "string", maxLength: 500 } },
        required: ["id", "body"],
        additionalProperties: false,
      },
    },
    closeIssue: {
      description: "Closes an issue.",
      effect: "mutate",
      method: "POST",
      path: "issues/{id}/close",
      arguments: { type: "object", properties: { id: { type: "string" } }, required: ["id"], additionalProperties: false },
    },
  },
};

const TRIAGE_CONTRACT = {
  id: "issue-triage",
  version: "1.0.0",
  tool: "triage_issues",
  title: "Issue triage",
  description: "Reads issues and comments on them through the issues connector.",
  class: "controlled-mutation",
  phase: 2,
  inputSchema: { type: "object" },
  limits: { wallMs: 5000, subRequests: 10 },
  actions: ["issues.read", "issues.mutate"],
  connectors: [{ connector: "issues", operations: ["listIssues", "addComment"] }],
  egress: [
    {
      host: "issues.example.test",
      protocol: "https",
      methods: ["GET", "POST"],
      paths: ["/api/"],
      capability: "connector:issues",
      inject: { header: "authorization", secret: "EGRESS_ISSUES_TOKEN", format: "Bearer {secret}" },
    },
  ],
};

type Seen = { method: string; url: string; authorization: string | undefined; body: string };
let api: Server;
const seen: Seen[] = [];
let server: LocalServer;
let acme: McpSession;
let readers: McpSession;

beforeAll(async () => {
  api = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", authorization: request.headers.authorization, body });
      const answer = (status: number, value: unknown) => {
        response.writeHead(status, { "content-type": "application/json" });
        response.end(JSON.stringify(value));
      };
      if (request.headers.authorization !== `Bearer ${TOKEN}`) return answer(401, { error: "no token" });
      if (request.method === "GET" && request.url === "/api/issues?state=open")
        return answer(200, [
          { id: "7", title: "flaky test" },
          { id: "9", title: "slow build" },
        ]);
      const comment = /^\/api\/issues\/(\d+)\/comments$/.exec(request.url ?? "");
      if (request.method === "POST" && comment) return answer(201, { issue: comment[1], comment: JSON.parse(body) });
      return answer(404, { error: "no such route" });
    });
  });
  await new Promise<void>((listening) => api.listen(0, "127.0.0.1", listening));
  const origin = `http://127.0.0.1:${(api.address() as AddressInfo).port}`;
  const grant = (actions: string[]) => ({ contract: "issue-triage", maxDataClass: "internal", actions });
  const dirs = dataDirs(
    { "issue-triage": TRIAGE_CONTRACT },
    {
      tenants: {
        acme: { phases: [1, 2, 3], teams: { triagers: { members: ["*"], grants: [grant(["*"])] } } },
        globex: { phases: [1, 2], teams: { readers: { members: ["*"], grants: [grant(["issues.read"])] } } },
      },
    },
    { issues: ISSUES_CONNECTOR },
  );
  server = await startLocalServer({
    env: { ...dirs, EGRESS_ISSUES_TOKEN: TOKEN, EGRESS_RESOLVE: JSON.stringify({ "issues.example.test": origin }) },
  });
  acme = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token({ tenant: "acme", actor: "alice", session: "s-connectors" }));
  readers = await connectClient(CLIENT_KINDS[0], server.mcpUrl, await server.token({ tenant: "globex", actor: "gina", session: "s-readers" }));
}, 120_000);

afterAll(async () => {
  await acme?.close();
  await readers?.close();
  await server?.stop();
  await new Promise((closed) => api?.close(closed));
});

type Call = { capability: string; method: string; decision: string; reason: string | null; status?: number | null; bytes?: number; argsSha256?: string };

async function callsOf(runId: string, tenant = "acme", session = "s-connectors"): Promise<Call[]> {
  const token = await server.token({ tenant, actor: "audit", session, roles: ["auditor"] });
  const response = await fetch(`${server.url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${token}` } });
  const { records } = (await response.json()) as { records: Array<{ kind: string; runId: string; activity?: { capabilities: { calls: Call[] } } }> };
  return records.find((record) => record.kind === "run.finished" && record.runId === runId)?.activity?.capabilities.calls ?? [];
}

describe("connectors in a run", () => {
  it("reads through one operation, computes, writes through another; the credential is injected, never seen, and every call is recorded", async () => {
    const before = seen.length;
    const code = `export default async (input, ctx) => {
      const open = await ctx.env.issues.listIssues({ state: "open" });
      const posted = await ctx.env.issues.addComment({ id: open[0].id, body: "triaged " + open.length + " open issues" });
      return { operations: Object.keys(ctx.env.issues), titles: open.map((issue) => issue.title), posted };
    }`;
    const result = await acme.callTool("triage_issues", { code });
    expect(result.isError ?? false).toBe(false);
    const envelope = result.structuredContent as { runId: string; result: Record<string, unknown> };
    expect(envelope.result).toEqual({
      operations: ["listIssues", "addComment"],
      titles: ["flaky test", "slow build"],
      posted: { issue: "7", comment: { body: "triaged 2 open issues" } },
    });
    expect(JSON.stringify(result)).not.toContain(TOKEN);
    const sent = seen.slice(before);
    expect(sent.map((request) => [request.method, request.url, request.authorization])).toEqual([
      ["GET", "/api/issues?state=open", `Bearer ${TOKEN}`],
      ["POST", "/api/issues/7/comments", `Bearer ${TOKEN}`],
    ]);
    const calls = await callsOf(envelope.runId);
    expect(calls.map((call) => [call.capability, call.method, call.decision, call.status])).toEqual([
      ["connector:issues", "listIssues", "allowed", 200],
      ["connector:issues", "addComment", "allowed", 201],
    ]);
    for (const call of calls) {
      expect(call.argsSha256).toMatch(/^[0-9a-f]{64}$/);
      expect(call.bytes).toBeGreaterThan(0);
    }
  });

  it("leaves an ungranted operation out of ctx.env, denies and records a forged call to it, and checks arguments before anything leaves", async () => {
    const before = seen.length;
    const code = `export default async (input, ctx) => {
      const outcome = async (call) => { try { await call(); return "sent"; } catch (error) { return String(error.message).split("]")[0] + "]"; } };
      return {
        closeIssue: typeof ctx.env.issues.closeIssue,
        forged: await outcome(() => ctx.env.issues.call("closeIssue", { id: "7" })),
        invalid: await outcome(() => ctx.env.issues.listIssues({ state: "everything" })),
        injected: await outcome(() => ctx.env.issues.addComment({ id: "7/../../admin", body: "x" })),
      };
    }`;
    const result = await acme.callTool("triage_issues", { code });
    const envelope = result.structuredContent as { runId: string; result: Record<string, unknown> };
    expect(envelope.result).toEqual({
      closeIssue: "undefined",
      forged: "[operation_not_granted]",
      invalid: "[invalid_request]",
      injected: "[invalid_request]",
    });
    expect(seen.length).toBe(before);
    expect((await callsOf(envelope.runId)).map((call) => [call.method, call.decision, call.reason, call.status])).toEqual([
      ["closeIssue", "denied", "operation_not_granted", null],
      ["listIssues", "denied", "invalid_request", null],
      ["addComment", "denied", "invalid_request", null],
    ]);
  });

  it("keeps the binding's helpers out of reach: code that imports env and calls them directly gets nothing sent and nothing recorded as allowed", async () => {
    const before = seen.length;
    const code = `import { env } from "cloudflare:workers";
    export default async () => {
      const raw = env?.AGENT_EXEC_CONNECTOR_issues;
      if (!raw) return "no raw binding";
      const tries = [];
      for (const method of ["send", "record"]) {
        try { await raw[method]({ props: {} }, "closeIssue", { method: "POST", path: "issues/7/close", query: [], arguments: { type: "object" } }, { id: "7" }, {}); tries.push(method + ": sent"); }
        catch (error) { tries.push(method + ": refused"); }
      }
      return tries.join(", ");
    }`;
    const result = await acme.callTool("triage_issues", { code });
    const envelope = result.structuredContent as { runId: string; result?: unknown };
    expect(["no raw binding", "send: refused, record: refused"]).toContain(envelope.result);
    expect(seen.length).toBe(before);
    expect((await callsOf(envelope.runId)).filter((call) => call.decision === "allowed")).toEqual([]);
  });

  it("refuses a path argument that would climb out of the operation's path", async () => {
    const before = seen.length;
    const result = await acme.callTool("triage_issues", {
      code: `export default async (input, ctx) => { try { await ctx.env.issues.addComment({ id: "..", body: "x" }); return "sent"; } catch (error) { return String(error.message).split("]")[0] + "]"; } }`,
    });
    // the schema's pattern refuses it first here; the binding refuses "." and ".." for any schema (unit-free: see capability-connector.ts)
    expect((result.structuredContent as { result: unknown }).result).toBe("[invalid_request]");
    expect(seen.length).toBe(before);
  });

  it("gives a team whose scope is issues.read the read operations only", async () => {
    const result = await readers.callTool("triage_issues", { code: "export default async (input, ctx) => Object.keys(ctx.env.issues)" });
    expect((result.structuredContent as { result: unknown }).result).toEqual(["listIssues"]);
  });

  it("tells the agent in tools/list what ctx.env.issues offers, as TypeScript generated from the schemas, and describe() answers in a run", async () => {
    const tool = (await acme.listTools()).find((candidate) => candidate.name === "triage_issues");
    expect(tool?.description).toContain("declare const issues: {");
    expect(tool?.description).toContain('listIssues(args: { state?: "open" | "closed" }): Promise<unknown>;');
    expect(tool?.description).toContain("addComment(args: { id: string; body: string }): Promise<unknown>;");
    expect(tool?.description).not.toContain("closeIssue");
    const result = await readers.callTool("triage_issues", {
      code: "export default async (input, ctx) => (await ctx.env.issues.describe()).map((d) => [d.operation, d.effect, d.declaration.split('\\n').pop()])",
    });
    expect((result.structuredContent as { result: unknown }).result).toEqual([
      ["listIssues", "read", 'listIssues(args: { state?: "open" | "closed" }): Promise<unknown>;'],
    ]);
  });

  it("does not lend the connector's credential to the code's own fetch()", async () => {
    const before = seen.length;
    const code = `export default async () => {
      try { const r = await fetch("https://issues.example.test/api/issues?state=open"); return r.status; } catch (error) { return String(error.message).slice(0, 40); }
    }`;
    const result = await acme.callTool("triage_issues", { code });
    expect(seen.slice(before).filter((request) => request.authorization !== undefined)).toEqual([]);
    expect(JSON.stringify(result)).not.toContain(TOKEN);
  });
});
