import { describe, expect, it } from "vitest";
import { facets, filterRuns, runsOf, UNFINISHED } from "../../src/viewer/session-runs.ts";
import { BASE, worker } from "./worker-requests.ts";

const header = (runId: string, contract = "read-only-analysis") => ({
  runId,
  tenant: "acme",
  actor: "alice",
  session: "s-1",
  contract: { id: contract, version: "1.0.0", class: "read-only" },
  policyHash: "a".repeat(64),
  decision: { outcome: "allow", reasons: [], dataClass: "internal", team: "all", scope: ["read"] },
});
const chained = (seq: number) => ({ seq, at: `2026-11-25T00:00:0${seq}.000Z`, prevHash: "p", hash: "h" });
const start = (seq: number, runId: string, contract?: string) => ({
  kind: "run.started",
  ...header(runId, contract),
  ...chained(seq),
  roles: ["auditor"],
  intent: { source: "mcp" },
  plan: null,
});
const finish = (seq: number, runId: string, startSeq: number, termination: string, extra: object = {}) => ({
  kind: "run.finished",
  ...header(runId),
  ...chained(seq),
  startSeq,
  termination,
  latencyMs: { start: 5, exec: 1, total: 9 },
  ...extra,
});

describe("the viewer's timeline", () => {
  const records = [
    start(1, "run_a"),
    start(2, "run_b", "quick-probe"),
    finish(3, "run_a", 1, "completed"),
    start(4, "run_c"),
    finish(5, "run_b", 2, "cancelled", { reconciledBy: "ledger_alarm", error: { code: "run_lost", message: "cut off" } }),
    finish(6, "run_b", 2, "timed_out"),
    finish(7, "run_x", 99, "completed"),
  ];

  it("pairs each start with its first finish, keeps unfinished runs, marks a late second finish and skips an orphan finish", () => {
    const runs = runsOf(records);
    expect(runs.map((r) => [r.runId, r.termination, r.startSeq, r.finishSeq, r.reconciledBy, r.late])).toEqual([
      ["run_a", "completed", 1, 3, null, false],
      ["run_b", "cancelled", 2, 5, "ledger_alarm", true],
      ["run_c", UNFINISHED, 4, null, null, false],
    ]);
    expect(runs[1]?.error).toEqual({ code: "run_lost", message: "cut off" });
    expect(runs[0]).toMatchObject({ actor: "alice", roles: ["auditor"], intent: "mcp", latencyMs: { total: 9 } });
  });

  it("filters by termination and by contract, and counts each value", () => {
    const runs = runsOf(records);
    expect(filterRuns(runs, { termination: "cancelled" }).map((r) => r.runId)).toEqual(["run_b"]);
    expect(filterRuns(runs, { contract: "read-only-analysis" }).map((r) => r.runId)).toEqual(["run_a", "run_c"]);
    expect(filterRuns(runs, { contract: "read-only-analysis", termination: "completed" }).map((r) => r.runId)).toEqual(["run_a"]);
    expect(filterRuns(runs, {})).toHaveLength(3);
    expect(facets(runs)).toEqual({
      terminations: [
        ["cancelled", 1],
        ["completed", 1],
        [UNFINISHED, 1],
      ],
      contracts: [
        ["read-only-analysis", 2],
        ["quick-probe", 1],
      ],
    });
  });
});

describe("the viewer's routes", () => {
  it("serves the session page without a token, under a strict CSP, with the session id escaped", async () => {
    const response = await worker().fetch(`${BASE}/sessions/s-1`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(response.headers.get("content-security-policy")).toContain("script-src 'self'");
    expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const html = await response.text();
    expect(html).toContain('<body data-session="s-1">');
    expect(html).toMatch(/<script type="module" src="\/viewer\/viewer\.js\?v=[0-9a-f]{16}"><\/script>/);
    expect(html).not.toMatch(/<script>/);
  });

  it.each(["/sessions/%3Cscript%3E", "/sessions/%E0%A4%A", "/sessions/a%2Fb"])("answers %s with a typed 404, not a page", async (path) => {
    const response = await worker().fetch(`${BASE}${path}`);
    expect(response.status).toBe(404);
    expect(await response.json()).toMatchObject({ error: { code: "not_found", hint: expect.stringContaining("/sessions/{sid}") } });
  });

  it("serves the bundled script and style with a version tag, and answers a revalidation with 304", async () => {
    const script = await worker().fetch(`${BASE}/viewer/viewer.js`);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect((await script.text()).length).toBeGreaterThan(10_000);
    const etag = script.headers.get("etag");
    expect(etag).toMatch(/^"[0-9a-f]{16}"$/);
    const again = await worker().fetch(`${BASE}/viewer/viewer.css`, { headers: { "if-none-match": etag ?? "" } });
    expect(again.status).toBe(304);
    const post = await worker().fetch(`${BASE}/sessions/s-1`, { method: "POST" });
    expect(post.status).toBe(405);
  });
});
