import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { budgetFor, type SlotRequest } from "../../src/budget/index.ts";

const LIMITS = { maxInFlight: 2, queueMax: 2, downgradeInFlight: 1 };
let runs = 0;
const request = (overrides: Partial<SlotRequest> = {}): SlotRequest => ({
  lane: "interactive",
  runId: `run_budget_${++runs}`,
  contract: "read-only-analysis",
  mode: "reject",
  maxWaitMs: 2_000,
  leaseMs: 60_000,
  limits: LIMITS,
  ...overrides,
});
const done = { at: Date.now(), outcome: "granted" as const, termination: "completed", queueMs: 0, startMs: 5, execMs: 1, totalMs: 9 };

describe("tenant budget: leasing", () => {
  it("grants up to the lane's limit, then rejects with a retry-after, and grants again once a slot is released", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-lease");
    const first = request();
    expect(await budget.acquire(first)).toEqual({ outcome: "granted", pool: "main", queuedMs: 0, inFlight: 1 });
    expect(await budget.acquire(request())).toMatchObject({ outcome: "granted", inFlight: 2 });
    const refused = await budget.acquire(request());
    expect(refused).toMatchObject({ outcome: "rejected", reason: "budget_full", inFlight: 2 });
    expect(refused.outcome === "rejected" && refused.retryAfterMs).toBeGreaterThan(0);
    expect(await budget.release(first.runId, done)).toEqual({ released: true });
    expect(await budget.release(first.runId, done)).toEqual({ released: false });
    expect(await budget.acquire(request())).toMatchObject({ outcome: "granted", inFlight: 2 });
  });

  it("keeps the lanes apart: a full interactive lane does not touch batch", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-lanes");
    await budget.acquire(request());
    await budget.acquire(request());
    expect(await budget.acquire(request())).toMatchObject({ outcome: "rejected" });
    expect(await budget.acquire(request({ lane: "batch" }))).toMatchObject({ outcome: "granted", inFlight: 1 });
  });

  it("takes back the slot of a run that never released it once its lease expires, by alarm without new traffic", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-expiry");
    // long enough that the checks below run before the leases expire, even on a loaded machine
    await budget.acquire(request({ leaseMs: 400 }));
    await budget.acquire(request({ leaseMs: 400 }));
    const leases = () => runInDurableObject(budget, (_instance, state) => state.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM leases").one().n);
    expect(await leases()).toBe(2);
    expect(await runInDurableObject(budget, (_instance, state) => state.storage.getAlarm())).not.toBeNull();
    // read the table directly (acquire and metrics expire leases themselves): only the alarm can empty it
    const deadline = Date.now() + 5_000;
    while ((await leases()) > 0 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 20));
      await runDurableObjectAlarm(budget);
    }
    expect(await leases()).toBe(0);
  });

  it("also expires stale leases when the next call arrives", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-expiry-on-call");
    await budget.acquire(request({ leaseMs: 20 }));
    await budget.acquire(request({ leaseMs: 20 }));
    await new Promise((resolve) => setTimeout(resolve, 40));
    expect(await budget.acquire(request())).toMatchObject({ outcome: "granted", inFlight: 1 });
  });
});

describe("tenant budget: backpressure modes", () => {
  it("delay: waits first come first served and is granted as slots free, with its queue time", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-delay");
    const holders = [request(), request()];
    for (const holder of holders) await budget.acquire(holder);
    const first = budget.acquire(request({ mode: "delay" }));
    const second = budget.acquire(request({ mode: "delay" }));
    while ((await budget.metrics(60_000)).waiting.interactive < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    await new Promise((resolve) => setTimeout(resolve, 30));
    await budget.release(holders[0]?.runId ?? "", done);
    const granted = await first;
    expect(granted).toMatchObject({ outcome: "delayed", pool: "main" });
    expect(granted.queuedMs).toBeGreaterThanOrEqual(25);
    expect((await budget.metrics(60_000)).waiting.interactive).toBe(1);
    await budget.release(holders[1]?.runId ?? "", done);
    expect(await second).toMatchObject({ outcome: "delayed" });
  });

  it("delay: rejects once the queue is full, and when the wait runs out", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-delay-limits");
    await budget.acquire(request());
    await budget.acquire(request());
    const waiting = [budget.acquire(request({ mode: "delay", maxWaitMs: 500 })), budget.acquire(request({ mode: "delay", maxWaitMs: 500 }))];
    // both are queued before the third asks (polled, not slept: a loaded machine delivers them later)
    while ((await budget.metrics(60_000)).waiting.interactive < 2) await new Promise((resolve) => setTimeout(resolve, 5));
    expect(await budget.acquire(request({ mode: "delay" }))).toMatchObject({ outcome: "rejected", reason: "queue_full" });
    const expired = await Promise.all(waiting);
    for (const outcome of expired) {
      expect(outcome).toMatchObject({ outcome: "rejected", reason: "wait_expired" });
      expect(outcome.queuedMs).toBeGreaterThanOrEqual(490);
    }
  });

  it("downgrade: takes a slot of the downgrade pool when the lane is full, and rejects when that is full too", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-downgrade");
    await budget.acquire(request());
    await budget.acquire(request());
    expect(await budget.acquire(request({ mode: "downgrade" }))).toEqual({ outcome: "downgraded", pool: "downgrade", queuedMs: 0, inFlight: 1 });
    expect(await budget.acquire(request({ mode: "downgrade" }))).toMatchObject({ outcome: "rejected", reason: "downgrade_full" });
  });

  it("counts every outcome and the phases of released runs in its metrics", async () => {
    const budget = budgetFor(env.TENANT_BUDGET, "t-samples");
    const granted = request();
    await budget.acquire(granted);
    await budget.acquire(request());
    await budget.acquire(request());
    await budget.release(granted.runId, { ...done, startMs: 7, execMs: 2, totalMs: 12 });
    const { lanes } = await budget.metrics(60_000);
    expect(lanes).toHaveLength(1);
    expect(lanes[0]?.all.runs).toEqual({ total: 2, granted: 1, delayed: 0, downgraded: 0, rejected: 1, completed: 1 });
    expect(lanes[0]?.all.startMs).toEqual({ n: 1, p50: 7, p95: 7, p99: 7 });
  });
});
