import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { budgetFor, DEFAULT_BUDGET, figuresOf, type GovernanceSample, governanceByTeam, type RunSample, type SlotRequest } from "../../src/budget/index.ts";
import { fairness, type TenantMetrics } from "../../src/metrics/index.ts";
import { bearer, signToken } from "./tokens.ts";
import { BASE, worker } from "./worker-requests.ts";

/** vitest.config.mts gives the Worker this METRICS_TOKEN. */
const METRICS_TOKEN = "unit-test-metrics-token-0123456789abcdef";
const TENANT = "metrics-t1";

const slot = (runId: string, contract = "read-only-analysis"): SlotRequest => ({
  lane: "interactive",
  runId,
  contract,
  mode: "reject",
  maxWaitMs: 1_000,
  leaseMs: 60_000,
  limits: { maxInFlight: 11, queueMax: 0, downgradeInFlight: 0 },
});

/** A known history: ten read-only runs of 10..100 ms total, one slow mutation, two refused calls. */
async function seed(): Promise<void> {
  const budget = budgetFor(env.TENANT_BUDGET, TENANT);
  for (let i = 1; i <= 10; i++) expect(await budget.acquire(slot(`run_m_${i}`))).toMatchObject({ outcome: "granted" });
  expect(await budget.acquire(slot("run_m_slow", "controlled-mutation"))).toMatchObject({ outcome: "granted" });
  for (const refused of ["run_m_x", "run_m_y"]) expect(await budget.acquire(slot(refused))).toMatchObject({ outcome: "rejected" });
  for (let i = 1; i <= 10; i++) {
    await budget.release(`run_m_${i}`, {
      at: Date.now(),
      outcome: "granted",
      termination: "completed",
      queueMs: 0,
      startMs: i,
      execMs: 2 * i,
      totalMs: 10 * i,
    });
  }
  await budget.release("run_m_slow", { at: Date.now(), outcome: "granted", termination: "failed", queueMs: 0, startMs: 40, execMs: 400, totalMs: 500 });
}

const get = (path: string, headers: HeadersInit = {}) => worker().fetch(`${BASE}${path}`, { headers });

describe("GET /v1/metrics", () => {
  it("gives each phase's p50/p95/p99 per contract and for the lane, and the outcome counts, from a known history", async () => {
    await seed();
    const response = await get(`/v1/metrics?tenant=${TENANT}&window=1h`, bearer(METRICS_TOKEN));
    expect(response.status).toBe(200);
    const report = (await response.json()) as { window: { ms: number }; tenants: Record<string, TenantMetrics>; fairness: unknown };
    expect(report.window.ms).toBe(3_600_000);
    const lane = report.tenants[TENANT]?.lanes.interactive;
    expect(lane?.contracts["read-only-analysis"]).toEqual({
      runs: { total: 12, granted: 10, delayed: 0, downgraded: 0, rejected: 2, completed: 10 },
      queueMs: { n: 12, p50: 0, p95: 0, p99: 0 },
      startMs: { n: 10, p50: 5, p95: 10, p99: 10 },
      execMs: { n: 10, p50: 10, p95: 20, p99: 20 },
      totalMs: { n: 10, p50: 50, p95: 100, p99: 100 },
    });
    expect(lane?.contracts["controlled-mutation"]?.totalMs).toEqual({ n: 1, p50: 500, p95: 500, p99: 500 });
    // the lane as a whole, never blended into a single number across phases
    expect(lane?.all.totalMs).toEqual({ n: 11, p50: 60, p95: 500, p99: 500 });
    expect(lane?.all.runs).toMatchObject({ total: 13, rejected: 2, completed: 10 });
    expect(report.tenants[TENANT]?.budget).toEqual(DEFAULT_BUDGET);
    expect(report.fairness).toBeNull();

    const text = await get(`/v1/metrics?tenant=${TENANT}&window=1h`, { ...bearer(METRICS_TOKEN), accept: "text/plain" });
    expect(text.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
    const body = await text.text();
    expect(body).toContain("# TYPE agent_exec_run_phase_ms gauge");
    expect(body).toContain(`agent_exec_run_phase_ms{tenant="${TENANT}",lane="interactive",contract="read-only-analysis",phase="total",quantile="0.5"} 50`);
    expect(body).toContain(`agent_exec_run_phase_ms{tenant="${TENANT}",lane="interactive",contract="*",phase="total",quantile="0.99"} 500`);
    expect(body).toContain(`agent_exec_runs{tenant="${TENANT}",lane="interactive",contract="read-only-analysis",outcome="rejected"} 2`);
  });

  it("shows a tenant's auditor that tenant's figures only, and no fairness across tenants", async () => {
    await budgetFor(env.TENANT_BUDGET, "metrics-t2").acquire(slot("run_m_other"));
    const auditor = await signToken({ tenant: "metrics-t2", roles: ["auditor"] });
    const report = (await (await get(`/v1/metrics?tenant=${TENANT}`, bearer(auditor))).json()) as { tenants: object; fairness: unknown };
    expect(Object.keys(report.tenants)).toEqual(["metrics-t2"]);
    expect(report.fairness).toBeNull();
  });

  it("answers 404 for a tenant the policy does not name and nothing is known of, whatever the name", async () => {
    for (const name of ["no-such-tenant", "<script>", "x".repeat(128)]) {
      const response = await get(`/v1/metrics?tenant=${encodeURIComponent(name)}`, bearer(METRICS_TOKEN));
      expect(response.status).toBe(404);
      expect(await response.json()).toMatchObject({ error: { code: "not_found", hint: expect.stringContaining("acme, globex") } });
    }
    // a policy tenant with no figures yet is still a tenant
    expect((await get("/v1/metrics?tenant=globex", bearer(METRICS_TOKEN))).status).toBe(200);
  });

  it("gives the platform view every policy tenant and the fairness figures", async () => {
    const report = (await (await get("/v1/metrics", bearer(METRICS_TOKEN))).json()) as { tenants: object; fairness: object };
    expect(Object.keys(report.tenants)).toEqual(["acme", "globex"]);
    expect(report.fairness).toEqual(expect.any(Object));
  });

  it.each([
    ["no token", {}, 401, "unauthorized"],
    ["a wrong metrics token", bearer("not-the-metrics-token-0123456789abcdef"), 401, "invalid_token"],
  ])("refuses %s", async (_case, headers, status, code) => {
    const response = await get("/v1/metrics", headers);
    expect(response.status).toBe(status);
    expect(await response.json()).toMatchObject({ error: { code } });
  });

  it("refuses a token without the auditor role with a typed 403", async () => {
    const response = await get("/v1/metrics", bearer(await signToken({ roles: [] })));
    expect(response.status).toBe(403);
    expect(await response.json()).toMatchObject({ error: { code: "forbidden", message: expect.stringContaining("auditor") } });
  });

  it.each(["?window=0s", "?window=2d", "?window=abc", "?format=xml"])("answers %s with a typed 400 and a hint", async (query) => {
    const response = await get(`/v1/metrics${query}`, bearer(METRICS_TOKEN));
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: { code: "bad_request", hint: expect.stringContaining("window=") } });
  });
});

describe("fairness", () => {
  const history = (completed: number, totals: number[]): RunSample[] =>
    totals.map((totalMs, i) => ({
      at: 0,
      lane: "interactive",
      contract: "c",
      outcome: "granted",
      termination: i < completed ? "completed" : "failed",
      queueMs: 0,
      startMs: 1,
      execMs: 1,
      totalMs,
    }));
  const tenant = (maxInFlight: number, samples: RunSample[]): TenantMetrics => ({
    budget: { ...DEFAULT_BUDGET, interactive: { maxInFlight, queueMax: 0 } },
    inFlight: { interactive: 0, batch: 0 },
    keptIdle: { interactive: 0, batch: 0 },
    waiting: { interactive: 0, batch: 0 },
    governance: governanceByTeam([], [], new Set()),
    lanes: samples.length > 0 ? { interactive: { all: figuresOf(samples), contracts: {} } } : {},
  });

  it("compares each tenant's share of completed runs with its share of the budget, and the p95 spread", () => {
    const result = fairness({
      big: tenant(6, history(30, Array(30).fill(20))),
      small: tenant(2, history(10, Array(10).fill(80))),
      idle: tenant(8, []),
    });
    expect(result.interactive?.tenants).toEqual({
      big: { completed: 30, completedShare: 0.75, budgetShare: 0.75, shareRatio: 1, p95TotalMs: 20 },
      small: { completed: 10, completedShare: 0.25, budgetShare: 0.25, shareRatio: 1, p95TotalMs: 80 },
    });
    expect(result.interactive?.p95Spread).toEqual({ ratio: 4, slowest: "small", fastest: "big" });
    expect(result.batch).toBeUndefined();
  });
});

describe("governance figures", () => {
  const TENANT_G = "gov-t1";
  const run = (i: number, overrides: Partial<GovernanceSample> = {}): GovernanceSample => ({
    at: Date.now(),
    runId: `run_00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
    team: "platform",
    contract: "read-only-analysis",
    phase: 1,
    decision: "allow",
    termination: "completed",
    planned: false,
    drifted: false,
    approval: null,
    ...overrides,
  });

  it("gives the policy-denied ratio, drift rate, human override frequency and incident link rate per team, from a known history", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, TENANT_G);
    // platform: 10 runs, 2 denied by policy, 4 with a plan of which 1 drifted
    for (let i = 0; i < 10; i++) {
      await budget.noteRun(run(i, { decision: i < 2 ? "deny" : "allow", termination: i < 2 ? "denied" : "completed", planned: i >= 6, drifted: i === 9 }));
    }
    // sre: 4 approval requests, 2 approved and 1 rejected by a human
    for (let i = 10; i < 14; i++)
      await budget.noteRun(run(i, { team: "sre", contract: "privileged-change", decision: "needs_approval", termination: "denied", approval: "requested" }));
    await budget.noteApprovalDecision({ at: Date.now(), team: "sre", verdict: "approved" });
    await budget.noteApprovalDecision({ at: Date.now(), team: "sre", verdict: "approved" });
    await budget.noteApprovalDecision({ at: Date.now(), team: "sre", verdict: "rejected" });
    // an incident links 3 runs (one twice: counted once)
    const auditor = await signToken({ tenant: TENANT_G, roles: ["auditor"] });
    const linked = await worker().fetch(`${BASE}/v1/incidents`, {
      method: "POST",
      headers: { ...bearer(auditor), "content-type": "application/json" },
      body: JSON.stringify({ incidentId: "INC-7", runIds: [run(0).runId, run(1).runId, run(10).runId, run(0).runId] }),
    });
    expect(await linked.json()).toMatchObject({ incidentId: "INC-7", newLinks: 3 });

    const report = (await (await get(`/v1/metrics?tenant=${TENANT_G}&window=1h`, bearer(METRICS_TOKEN))).json()) as {
      tenants: Record<string, TenantMetrics>;
    };
    const governance = report.tenants[TENANT_G]?.governance;
    expect(governance?.teams.platform).toEqual({
      runs: 10,
      policyDenied: 2,
      policyDeniedRatio: 0.2,
      planned: 4,
      drifted: 1,
      driftRate: 0.25,
      approvalRequests: 0,
      approvalDecisions: { approved: 0, rejected: 0 },
      overrideFrequency: null,
      incidentLinkedRuns: 2,
      incidentLinkRate: 0.2,
    });
    expect(governance?.teams.sre).toMatchObject({
      runs: 4,
      approvalRequests: 4,
      approvalDecisions: { approved: 2, rejected: 1 },
      overrideFrequency: 0.75,
      incidentLinkedRuns: 1,
    });
    expect(governance?.all).toMatchObject({
      runs: 14,
      policyDenied: 2,
      policyDeniedRatio: 0.143,
      driftRate: 0.25,
      overrideFrequency: 0.75,
      incidentLinkRate: 0.214,
    });

    const text = await (await get(`/v1/metrics?tenant=${TENANT_G}&window=1h&format=prometheus`, bearer(METRICS_TOKEN))).text();
    expect(text).toContain(`agent_exec_governance_ratio{tenant="${TENANT_G}",team="platform",figure="policy_denied"} 0.2`);
    expect(text).toContain(`agent_exec_governance_ratio{tenant="${TENANT_G}",team="sre",figure="human_override"} 0.75`);
  });

  it("counts a run's governance facts that came with its slot's release, also when the lease had already expired", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "gov-t2");
    const done = { at: Date.now(), outcome: "granted" as const, termination: "completed", queueMs: 0, startMs: 1, execMs: 1, totalMs: 3 };
    const slot = await budget.acquire({
      lane: "interactive",
      runId: run(20).runId,
      contract: "read-only-analysis",
      mode: "reject",
      maxWaitMs: 0,
      leaseMs: 60_000,
      limits: { maxInFlight: 2, queueMax: 0, downgradeInFlight: 0 },
    });
    expect(slot.outcome).toBe("granted");
    expect(await budget.release(run(20).runId, done, { sample: run(20, { planned: true, drifted: true }) })).toEqual({ released: true });
    // no lease any more (released, or expired): the facts still count
    expect(await budget.release(run(21).runId, done, { sample: run(21, { decision: "deny", termination: "denied" }) })).toEqual({ released: false });
    const figures = await budget.governance(3_600_000);
    expect(figures.teams.platform).toMatchObject({ runs: 2, policyDenied: 1, planned: 1, drifted: 1 });
  });

  it("refuses to link incidents without the auditor or operator role, or with a malformed body", async () => {
    const post = async (roles: string[], body: unknown) =>
      await worker().fetch(`${BASE}/v1/incidents`, {
        method: "POST",
        headers: { ...bearer(await signToken({ tenant: TENANT_G, roles })), "content-type": "application/json" },
        body: JSON.stringify(body),
      });
    expect((await post([], { incidentId: "INC-1", runIds: [run(0).runId] })).status).toBe(403);
    const bad = await post(["auditor"], { incidentId: "INC-1", runIds: ["nope"] });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "bad_request", message: expect.stringContaining("runIds.0") } });
  });
});
