import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { LocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, errorCode, errorOf, type McpSession } from "../helpers/mcp-clients.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await sharedServer();
});
afterAll(async () => {
  await server?.stop();
});

describe.each(CLIENT_KINDS)("over MCP with %s", (kind) => {
  let session: McpSession;
  let sid: string;
  beforeAll(async () => {
    sid = `s-${kind.slice(0, 6).replace(/[^a-z0-9]/g, "")}-${Date.now()}`;
    // alice holds the operator role so the privileged contract reaches its approval gate.
    session = await connectClient(kind, server.mcpUrl, await server.token({ tenant: "acme", actor: "alice", session: sid, roles: ["operator"] }));
  });
  afterAll(async () => {
    await session?.close();
  });

  it("lists exactly one tool per contract with schemas and annotations from its class", async () => {
    const tools = await session.listTools();
    expect(tools.map((t) => t.name).sort()).toEqual(["analyze_readonly", "change_privileged", "mutate_controlled"]);
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    expect(byName.analyze_readonly?.annotations).toMatchObject({ readOnlyHint: true, destructiveHint: false, openWorldHint: false });
    expect(byName.mutate_controlled?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false, openWorldHint: true });
    expect(byName.change_privileged?.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true, openWorldHint: true });
    for (const tool of tools) {
      expect(tool.description).toBeTruthy();
      expect(tool.inputSchema).toMatchObject({ type: "object", required: ["code"], properties: { code: { type: "string" } } });
    }
    expect(byName.change_privileged?.inputSchema).toMatchObject({ properties: { input: { required: ["reason"] } } });
  });

  it("advertises schemas a strict client takes: plan in every tool's arguments, no type unions, nothing unconstrained, and what each tool can reach", async () => {
    const tools = await session.listTools();
    const byName = Object.fromEntries(tools.map((t) => [t.name, t]));
    for (const tool of tools) {
      expect(tool.inputSchema).toMatchObject({
        additionalProperties: false,
        properties: {
          plan: {
            type: "object",
            properties: { destinations: { type: "array", items: { type: "string" } }, operations: { type: "array", items: { type: "string" } } },
          },
        },
      });
      // the portability rules MCP Inspector's --strict applies (no type arrays; every schema node constrains its value)
      const findings: string[] = [];
      const lint = (node: unknown, path: string) => {
        if (!node || typeof node !== "object" || Array.isArray(node)) return;
        const schema = node as Record<string, unknown>;
        if (Array.isArray(schema.type)) findings.push(`${path}: type union`);
        const constrains = ["type", "enum", "const", "anyOf", "oneOf", "allOf", "not", "properties", "items", "required", "minLength", "maxLength", "pattern"];
        if (!constrains.some((key) => key in schema)) findings.push(`${path}: unconstrained`);
        for (const [name, child] of Object.entries((schema.properties as object) ?? {})) lint(child, `${path}.${name}`);
        for (const [index, child] of ((schema.anyOf as unknown[]) ?? []).entries()) lint(child, `${path}.anyOf[${index}]`);
        if (schema.items) lint(schema.items, `${path}.items`);
      };
      lint(tool.inputSchema, `${tool.name}.inputSchema`);
      lint((tool as { outputSchema?: unknown }).outputSchema, `${tool.name}.outputSchema`);
      expect(findings).toEqual([]);
    }
    // what each tool's code can reach is in its own description, not one sentence for all
    expect(byName.analyze_readonly?.description).toContain("The code has no network access");
    expect(byName.mutate_controlled?.description).toMatch(
      /Capability bindings in ctx\.env \(when your grant covers them\): tracker; tracker reach(es)? their own service/,
    );
  });

  it("answers a tools/call of a tool it does not have with the names of those it has", async () => {
    await expect(session.callTool("analyse_readonly", { code: "export default () => 1" })).rejects.toThrow(
      /Unknown tool "analyse_readonly"\. This server's tools: analyze_readonly, change_privileged, mutate_controlled\./,
    );
  });

  it("runs code in a fresh dynamic worker and returns its JSON result and console output", async () => {
    const result = await session.callTool("analyze_readonly", {
      code: "export default async (input, ctx) => { console.log('summing', input.values.length); console.warn('careful'); return { sum: input.values.reduce((a, b) => a + b, 0), contract: ctx.contract.id }; }",
      input: { values: [1, 2, 3, 4] },
    });
    expect(result.isError).toBeFalsy();
    expect(result.structuredContent).toMatchObject({
      termination: "completed",
      result: { sum: 10, contract: "read-only-analysis" },
      logs: [
        { level: "log", message: "summing 4" },
        { level: "warn", message: "careful" },
      ],
      logsTruncated: false,
    });
    expect(String(result.structuredContent?.runId)).toMatch(/^run_/);
  });

  it.each([
    ["code that throws", "export default () => { throw new RangeError('out of range') }", "code_threw", /RangeError: out of range/],
    ["code that does not parse", "export default ( => 1", "code_syntax_error", /SyntaxError/],
    ["a module without a default export function", "export const answer = 42;", "invalid_module", /default export/],
    ["a result that is not JSON", "export default () => 10n", "result_not_serializable", /BigInt/],
    ["a circular result", "export default () => { const a = {}; a.self = a; return a; }", "result_not_serializable", /circular/i],
    ["a result above the contract's output cap", "export default () => 'x'.repeat(70000)", "output_too_large", /70002 bytes/],
    ["a promise that can never settle", "export default () => new Promise(() => {})", "code_hung", /never settle/],
    ["code that throws at module load", "throw new Error('at load'); export default () => 1", "code_threw", /at load/],
  ])("answers %s with a typed tool error", async (_case, code, expectedCode, message) => {
    const result = await session.callTool("analyze_readonly", { code });
    expect(result.isError).toBe(true);
    expect(errorCode(result)).toBe(expectedCode);
    const error = errorOf(result);
    expect(error.message).toMatch(message);
    expect(error.hint.length).toBeGreaterThan(10);
    expect(result.content[0]?.text).toContain(`${expectedCode}:`);
  });

  it.each([
    ["an unknown argument", { code: "export default () => 1", extra: true }, /unknown argument\(s\): extra/],
    ["no code", { input: {} }, /code/],
    ["input of the wrong type", { code: "export default () => 1", input: [1, 2] }, /input schema/],
    ["input missing a required field", { code: "export default () => 1", input: {} }, /reason/],
  ])("rejects %s as invalid_arguments without running anything", async (_case, args, message) => {
    const tool = (args as { input?: unknown }).input && !Array.isArray((args as { input?: unknown }).input) ? "change_privileged" : "analyze_readonly";
    const result = await session.callTool(tool, args);
    expect(result.isError).toBe(true);
    expect(errorCode(result)).toBe("invalid_arguments");
    expect(result.structuredContent).toMatchObject({ termination: "denied" });
    expect(errorOf(result).message).toMatch(message);
  });

  it("answers the privileged contract with approval_required and runs nothing", async () => {
    const result = await session.callTool("change_privileged", {
      code: "export default () => { console.log('should never print'); return 'ran'; }",
      input: { reason: "rotate credentials" },
    });
    expect(result.isError).toBe(true);
    expect(errorCode(result)).toBe("approval_required");
    expect(result.structuredContent).toMatchObject({
      termination: "denied",
      logs: [],
      decision: { outcome: "needs_approval", reasons: ["approval_required"] },
    });
  });

  it("gives two concurrent calls separate isolates that do not see each other's globals", async () => {
    const code =
      "export default async (input) => { const seen = globalThis.marker; globalThis.marker = input.me; await new Promise((r) => setTimeout(r, 50)); return { seen: seen ?? null, mine: globalThis.marker }; }";
    const [a, b] = await Promise.all([
      session.callTool("analyze_readonly", { code, input: { me: "a" } }),
      session.callTool("analyze_readonly", { code, input: { me: "b" } }),
    ]);
    expect(a.structuredContent?.result).toEqual({ seen: null, mine: "a" });
    expect(b.structuredContent?.result).toEqual({ seen: null, mine: "b" });
  });

  it("records every call of the session in one ledger, oldest first", async () => {
    const token = await server.token({ tenant: "acme", actor: "alice", session: sid });
    const response = await fetch(`${server.url}/v1/sessions/${sid}/evidence?limit=500`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(200);
    const body = (await response.json()) as { records: Array<Record<string, unknown>> };
    const seqs = body.records.map((r) => r.seq as number);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    const runs = new Set(body.records.map((r) => r.runId));
    // every run has a start and a finish, and the finish points at its start
    for (const runId of runs) {
      const [started, finished] = body.records.filter((r) => r.runId === runId);
      expect(started).toMatchObject({ kind: "run.started", tenant: "acme", actor: "alice", session: sid });
      expect(finished).toMatchObject({ kind: "run.finished", startSeq: started?.seq });
    }
    // the calls above: 1 success, 8 failures, 4 invalid, 1 approval, 2 concurrent
    expect(runs.size).toBe(16);
  });
});

describe("an authenticated MCP request whose body is not JSON", () => {
  it("gets the protocol's parse error, and the next call is served", async () => {
    const token = await server.token({ tenant: "acme", actor: "alice", session: "s-not-json" });
    const headers = {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      "mcp-protocol-version": "2025-06-18",
    };
    const broken = await fetch(server.mcpUrl, { method: "POST", headers, body: '{"jsonrpc": "2.0", "id": 1, "method": "tools/ca' });
    expect(broken.status).toBe(400);
    expect(((await broken.json()) as { error: { code: number } }).error.code).toBe(-32700);
    const ping = await fetch(server.mcpUrl, { method: "POST", headers, body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "ping" }) });
    expect(ping.status).toBe(200);
    expect(await ping.text()).toContain('"id":2');
  });
});
