import { createExecutionContext, runInDurableObject } from "cloudflare:test";
import { env, exports } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { SlotReserve } from "../../src/budget/index.ts";
import { bundledCatalog } from "../../src/catalog/index.ts";
import { ledgerFor } from "../../src/evidence/index.ts";
import { sandboxRuntime } from "../../src/execution/index.ts";
import { submitToolCall } from "../../src/intent/index.ts";
import { policyInForce } from "../../src/policy/index.ts";
import { routes } from "../../src/routes.ts";
import { testSandboxes } from "./tasks.ts";
import { bearer, signToken } from "./tokens.ts";
import { BASE, callTool, getJson, mcp, rpc, worker } from "./worker-requests.ts";

async function runOnce(token: string): Promise<void> {
  const response = await mcp(rpc("tools/call", { name: "analyze_readonly", arguments: { code: "export default () => 1" } }), bearer(token));
  expect(response.status).toBe(200);
  await response.text();
}

describe("routes", () => {
  it("describes itself at /", async () => {
    const response = await worker().fetch(`${BASE}/`);
    expect(await response.json()).toMatchObject({ name: "agent-exec", mcp: "/mcp", contracts: expect.arrayContaining(["analyze_readonly"]) });
  });

  it("marks every answer nosniff: JSON, errors and MCP alike", async () => {
    const answers = [
      await worker().fetch(`${BASE}/`),
      await worker().fetch(`${BASE}/no-such-route`),
      await worker().fetch(`${BASE}/v1/sessions/s-1/export`),
      await mcp(rpc("tools/list")),
    ];
    for (const answer of answers) {
      expect(answer.headers.get("x-content-type-options"), answer.url).toBe("nosniff");
      await answer.text();
    }
  });

  it("answers only to the allowed Host names on every route, as /mcp does (DNS rebinding)", async () => {
    const token = await signToken({ sid: "s-host" });
    for (const path of ["/", "/.well-known/jwks.json", "/sessions/s-host", "/approvals/apr_x", "/v1/sessions/s-host/evidence", "/v1/metrics"]) {
      const rebound = await worker().fetch(`${BASE}${path}`, { headers: { host: "attacker.example:8787", ...bearer(token) } });
      expect([path, rebound.status]).toEqual([path, 403]);
      expect(await rebound.json()).toMatchObject({ error: { code: "forbidden", message: expect.stringContaining("attacker.example") } });
      for (const host of ["127.0.0.1:8787", "localhost:8787", "[::1]:8787", "LOCALHOST"]) {
        const allowed = await worker().fetch(`${BASE}${path}`, { headers: { host, ...bearer(token) } });
        expect(await allowed.text(), `${path} ${host}`).not.toContain("does not answer to the Host");
      }
    }
    const mcpRebound = await mcp(rpc("tools/list"), { host: "attacker.example" });
    expect(mcpRebound.status).toBe(403);
    await mcpRebound.body?.cancel();
  });

  it("refuses discovery (initialize, tools/list) without a token by default: 401 pointing at the metadata", async () => {
    for (const body of [rpc("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } }), rpc("tools/list")]) {
      const response = await mcp(body);
      expect(response.status).toBe(401);
      expect(response.headers.get("www-authenticate")).toContain('resource_metadata="http://127.0.0.1:8787/.well-known/oauth-protected-resource/mcp"');
      await response.body?.cancel();
    }
  });

  it("answers a browser's CORS preflight on /mcp (it carries no token), and lets the browser read a 401's challenge", async () => {
    const preflight = await worker().fetch(`${BASE}/mcp`, {
      method: "OPTIONS",
      headers: {
        host: "127.0.0.1:8787",
        origin: "http://localhost:6274",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
      },
    });
    expect(preflight.status).toBeLessThan(300);
    expect(preflight.headers.get("access-control-allow-headers")).toMatch(/authorization/i);
    const refused = await mcp(rpc("tools/list"), { origin: "http://localhost:6274" });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe("*");
    expect(refused.headers.get("access-control-expose-headers")).toMatch(/WWW-Authenticate/i);
    await refused.body?.cancel();
  });

  it("answers discovery without a token where MCP_ANONYMOUS_DISCOVERY=on opts in, and still nothing else", async () => {
    const anonymous = { ...env, MCP_ANONYMOUS_DISCOVERY: "on" } as Env;
    const ctx = createExecutionContext();
    const send = (body: string) =>
      routes.fetch(
        new Request(`${BASE}/mcp`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            accept: "application/json, text/event-stream",
            "mcp-protocol-version": "2025-06-18",
            host: "127.0.0.1:8787",
          },
          body,
        }),
        anonymous,
        Object.assign(ctx, { exports }),
      );
    const list = await send(rpc("tools/list"));
    expect(list.status).toBe(200);
    expect(await list.text()).toContain("analyze_readonly");
    const call = await send(rpc("tools/call", { name: "analyze_readonly", arguments: { code: "export default () => 1" } }));
    expect(call.status).toBe(401);
    await call.body?.cancel();
  });

  it.each([
    ["a foreign Host", { host: "evil.example:8787" }],
    ["a foreign Origin", { origin: "http://evil.example:8787" }],
    ["both", { host: "evil.example", origin: "http://evil.example" }],
  ])("rejects %s before anything else (DNS rebinding)", async (_case, headers) => {
    const response = await mcp(rpc("initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } }), headers);
    expect(response.status).toBe(403);
  });

  it("answers unknown routes with a typed 404", async () => {
    const response = await worker().fetch(`${BASE}/nope`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("hides the bench routes unless LOCAL_BENCH=1", async () => {
    const response = await worker().fetch(`${BASE}/__bench/baseline`, { method: "POST", body: JSON.stringify({ code: "export default () => 1" }) });
    expect(response.status).toBe(404);
  });
});

describe("evidence route", () => {
  const evidence = (sid: string, token?: string, query = "") =>
    worker().fetch(`${BASE}/v1/sessions/${sid}/evidence${query}`, { headers: token ? bearer(token) : {} });

  it("serves the session's records to its own session token", async () => {
    const token = await signToken({ tenant: "acme", sid: "s-own" });
    await runOnce(token);
    const response = await evidence("s-own", token);
    expect(response.status).toBe(200);
    const body = (await response.json()) as { records: Array<{ kind: string }>; nextCursor: number | null; tenant: string };
    expect(body).toMatchObject({ tenant: "acme", session: "s-own", nextCursor: null });
    expect(body.records.map((r) => r.kind)).toEqual(["run.started", "run.finished"]);
  });

  it("serves any session of the tenant to an auditor", async () => {
    await runOnce(await signToken({ tenant: "acme", sid: "s-audited", sub: "bob" }));
    const auditor = await signToken({ tenant: "acme", sid: "s-audit-desk", sub: "carol", roles: ["auditor"] });
    expect((await evidence("s-audited", auditor)).status).toBe(200);
  });

  it("paginates with nextCursor", async () => {
    const token = await signToken({ tenant: "acme", sid: "s-pages" });
    await runOnce(token);
    await runOnce(token);
    const first = (await (await evidence("s-pages", token, "?limit=3")).json()) as { records: unknown[]; nextCursor: number };
    expect(first.records).toHaveLength(3);
    const second = (await (await evidence("s-pages", token, `?limit=3&cursor=${first.nextCursor}`)).json()) as { records: unknown[]; nextCursor: null };
    expect(second.records).toHaveLength(1);
    expect(second.nextCursor).toBeNull();
  });

  it.each([
    ["another tenant", { tenant: "globex", sid: "s-target", roles: ["auditor"] }],
    ["another session of the same tenant without the auditor role", { tenant: "acme", sid: "s-other" }],
  ])("answers %s with 404, not 403", async (_case, claims) => {
    await runOnce(await signToken({ tenant: "acme", sid: "s-target" }));
    const response = await evidence("s-target", await signToken(claims));
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "not_found" } });
  });

  it("answers a session that never ran anything with 404", async () => {
    expect((await evidence("s-empty", await signToken({ sid: "s-empty" }))).status).toBe(404);
  });

  it("answers no token with 401", async () => {
    expect((await evidence("s-own")).status).toBe(401);
  });

  it.each(["?limit=0", "?limit=abc", "?cursor=-1"])("answers a bad query %s with a typed 400", async (query) => {
    const response = await evidence("s-own", await signToken({ sid: "s-own" }), query);
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "bad_request", hint: expect.stringContaining("cursor") } });
  });
});

describe("fail closed", () => {
  it("runs nothing, and records why, when no task-signing key is configured", async () => {
    const catalog = bundledCatalog();
    const contract = catalog.contracts.find((c) => c.id === "read-only-analysis");
    if (!contract) throw new Error("no read-only contract");
    const report = await submitToolCall(
      {
        sandboxes: testSandboxes(),
        ledgers: env.SESSION_LEDGER,
        leases: new SlotReserve(env.TENANT_BUDGET, { freshMs: 0 }),
        approvals: env.APPROVALS,
        policy: policyInForce(catalog.policy, catalog.contracts, env.POLICY_ARCHIVE),
        tasks: { signer: null, trust: null, clockToleranceS: 5 },
        reconcileGraceMs: 30_000,
        runtime: sandboxRuntime("workerd (unit tests)", undefined),
      },
      contract,
      { actor: "alice", tenant: "acme", session: "s-unsigned", roles: [], expiresAt: 0 },
      { code: "export default () => 'must not run'" },
    );
    expect(report.outcome).toMatchObject({ termination: "failed", error: { code: "misconfigured" }, latencyMs: { start: null } });
    const page = await ledgerFor(env.SESSION_LEDGER, "acme", "s-unsigned").page(0, 10);
    expect(page.ok && page.page.records.map((r) => [r.kind, r.kind === "run.finished" ? r.termination : r.kind === "run.started" ? r.task : r.kind])).toEqual([
      ["run.started", null],
      ["run.finished", "failed"],
    ]);
  });
});

describe("fail closed when evidence cannot be written", () => {
  const code = "export default async () => { await fetch('https://docs.example.com/'); return 'ran'; }";

  it("runs nothing, and says so, when the ledger refuses the run's start record", async () => {
    const broken = ledgerFor(env.SESSION_LEDGER, "acme", "s-broken-disk");
    await runInDurableObject(broken, (_instance, state) => {
      state.storage.sql.exec("CREATE TRIGGER records_disk_full BEFORE INSERT ON records BEGIN SELECT RAISE(ABORT, 'disk I/O error'); END;");
    });
    const result = await callTool(await signToken({ sid: "s-broken-disk" }), "analyze_readonly", { code });
    expect(result).toMatchObject({ isError: true, structuredContent: { termination: "failed", error: { code: "evidence_unavailable" } } });
    const runId = String(result.structuredContent?.runId);
    expect(await broken.count()).toBe(0);
    expect(await broken.activity(runId)).toEqual([]);

    // the control: the same call in a healthy session runs and its fetch is recorded
    const control = await callTool(await signToken({ sid: "s-healthy-disk" }), "analyze_readonly", { code });
    const healthy = ledgerFor(env.SESSION_LEDGER, "acme", "s-healthy-disk");
    expect(await healthy.count()).toBe(2);
    expect((await healthy.activity(String(control.structuredContent?.runId))).length).toBeGreaterThan(0);
  });

  it("answers evidence_unavailable for a session whose ledger storage fails on read, and serves every other session", async () => {
    const token = await signToken({ sid: "s-io-error" });
    await callTool(token, "analyze_readonly", { code: "export default () => 1" });
    const failing = ledgerFor(env.SESSION_LEDGER, "acme", "s-io-error");
    await runInDurableObject(failing, (_instance, state) => {
      // what a disk I/O error looks like from inside the object: every statement throws
      const sql = state.storage.sql as unknown as { exec: () => never };
      sql.exec = () => {
        throw new Error("disk I/O error: SQLITE_IOERR (extended: SQLITE_IOERR_READ)");
      };
    });
    for (const path of ["/v1/sessions/s-io-error/evidence", "/v1/sessions/s-io-error/export"]) {
      const { status, body } = await getJson(path, token);
      expect([path, status, body]).toMatchObject([path, 503, { error: { code: "evidence_unavailable", message: expect.stringContaining("s-io-error") } }]);
    }
    const call = await callTool(token, "analyze_readonly", { code: "export default () => 'must not run'" });
    expect(call.structuredContent).toMatchObject({ termination: "failed", error: { code: "evidence_unavailable" } });
    // another session of the same tenant is untouched
    const other = await signToken({ sid: "s-io-neighbour" });
    expect((await callTool(other, "analyze_readonly", { code: "export default () => 2" })).structuredContent).toMatchObject({
      termination: "completed",
      result: 2,
    });
    expect((await getJson("/v1/sessions/s-io-neighbour/evidence", other)).status).toBe(200);
  });
});

describe("hardening: the pipeline records what it refuses", () => {
  const deps = () => {
    const catalog = bundledCatalog();
    return {
      sandboxes: testSandboxes(),
      ledgers: env.SESSION_LEDGER,
      leases: new SlotReserve(env.TENANT_BUDGET, { freshMs: 0 }),
      approvals: env.APPROVALS,
      policy: policyInForce(catalog.policy, catalog.contracts, env.POLICY_ARCHIVE),
      tasks: { signer: null, trust: null, clockToleranceS: 5 },
      reconcileGraceMs: 30_000,
      runtime: sandboxRuntime("workerd (unit tests)", undefined),
    };
  };
  const readOnly = () => {
    const contract = bundledCatalog().contracts.find((c) => c.id === "read-only-analysis");
    if (!contract) throw new Error("no read-only contract");
    return contract;
  };
  const recorded = async (tenant: string, session: string) => {
    const page = await ledgerFor(env.SESSION_LEDGER, tenant, session).page(0, 10);
    return page.ok ? page.page.records : [];
  };

  it.each([
    ["a lone surrogate", { x: "\ud800" }],
    ["a non-finite number", { x: Number.POSITIVE_INFINITY }],
  ])("refuses input with %s as invalid_arguments, and records it", async (_case, input) => {
    const session = `s-canon-${_case.length}`;
    const report = await submitToolCall(
      deps(),
      readOnly(),
      { actor: "alice", tenant: "acme", session, roles: [], expiresAt: 0 },
      { code: "export default () => 1", input },
    );
    expect(report.outcome).toMatchObject({ termination: "denied", error: { code: "invalid_arguments" } });
    expect((await recorded("acme", session)).map((r) => r.kind)).toEqual(["run.started", "run.finished"]);
  });

  it("treats a tenant named like an Object.prototype member as unknown, and records it", async () => {
    const report = await submitToolCall(
      deps(),
      readOnly(),
      { actor: "x", tenant: "constructor", session: "s-proto", roles: [], expiresAt: 0 },
      { code: "export default () => 1" },
    );
    expect(report.decision).toMatchObject({ outcome: "deny", reasons: ["tenant_unknown"] });
    expect(await recorded("constructor", "s-proto")).toHaveLength(2);
  });

  it("records a run even when the pipeline itself fails unexpectedly", async () => {
    const broken = {
      ...deps(),
      policy: {
        snapshotFor: () => Promise.reject(new Error("injected fault")),
        computeSnapshot: () => Promise.reject(new Error("injected fault")),
      },
    };
    const report = await submitToolCall(
      broken,
      readOnly(),
      { actor: "alice", tenant: "acme", session: "s-crash", roles: [], expiresAt: 0 },
      { code: "export default () => 1" },
    );
    expect(report.outcome).toMatchObject({ termination: "failed", error: { code: "internal_error" } });
    const records = await recorded("acme", "s-crash");
    expect(records.map((r) => [r.kind, r.kind === "run.finished" ? r.error?.code : null])).toEqual([
      ["run.started", null],
      ["run.finished", "internal_error"],
    ]);
  });
});
