import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { budgetFor, DEFAULT_BUDGET, type SlotRequest, SlotReserve } from "../../src/budget/index.ts";
import { bundledCatalog } from "../../src/catalog/index.ts";
import type { Contract } from "../../src/contracts/index.ts";

const contract = bundledCatalog().contracts.find((c) => c.id === "read-only-analysis") as Contract;
const budget = (maxInFlight: number) => ({ ...DEFAULT_BUDGET, interactive: { maxInFlight, queueMax: 0 } });
const DEADLINE_MS = 10_000;
let runs = 0;
const runId = () => `run_reserve_${++runs}`;
const done = { at: Date.now(), outcome: "granted" as const, termination: "completed", queueMs: 0, startMs: 5, execMs: 1, totalMs: 9 };

/** Collects what the reserve leaves for after the answer, like a request's waitUntil. */
function later(): { waitUntil: (promise: Promise<unknown>) => void; settled: () => Promise<unknown>; held: () => number } {
  const pending: Promise<unknown>[] = [];
  return { waitUntil: (promise) => pending.push(promise), settled: () => Promise.all(pending), held: () => pending.length };
}

const direct = (maxInFlight: number): SlotRequest => ({
  lane: "interactive",
  runId: runId(),
  contract: contract.id,
  mode: "reject",
  maxWaitMs: 0,
  leaseMs: 60_000,
  limits: { maxInFlight, queueMax: 0, downgradeInFlight: 0 },
});

const figures = async (tenant: string) => {
  const m = await budgetFor(env.TENANT_BUDGET, tenant).metrics(3_600_000);
  return { inFlight: m.inFlight.interactive, keptIdle: m.keptIdle.interactive, runs: m.lanes.find((l) => l.lane === "interactive")?.all.runs };
};

describe("slot reserve", () => {
  it("keeps a slot after its run and grants the next run from it without asking; the figures reach the budget, and idle slots go back", async () => {
    const tenant = "reserve-keep";
    // a wide window: the second run must end before the first report is on its way, even on a slow machine
    const reserve = new SlotReserve(env.TENANT_BUDGET, { freshMs: 1_000 });
    const first = await reserve.acquire(tenant, "run_keep_1", contract, "interactive", budget(4), DEADLINE_MS);
    expect(first).toMatchObject({
      ok: true,
      slot: { outcome: "granted", inFlight: 1, kept: { slotId: expect.stringMatching(/^reserve:/) }, contended: false },
    });
    expect(first.slot?.reserved).toBeUndefined();
    const after = later();
    await reserve.release(tenant, "run_keep_1", done, undefined, after.waitUntil);
    expect(reserve.kept(tenant, "interactive")).toEqual({ slots: 1, busy: 0 });

    const second = await reserve.acquire(tenant, "run_keep_2", contract, "interactive", budget(4), DEADLINE_MS);
    expect(second).toEqual({ ok: true, slot: { outcome: "granted", pool: "main", queuedMs: 0, inFlight: 1, reserved: true } });
    // the budget counts the kept slot as in flight: it is a lease there
    expect(await figures(tenant)).toMatchObject({ inFlight: 1 });
    await reserve.release(tenant, "run_keep_2", { ...done, totalMs: 11 }, undefined, after.waitUntil);
    // only the release that scheduled the report holds its request open (and with it its
    // sandbox's isolate); the second run's figures ride along in the same report
    expect(after.held()).toBe(1);

    // reports after the answer: both runs' figures, then the slot (idle since) goes back
    await after.settled();
    expect(reserve.kept(tenant, "interactive")).toEqual({ slots: 0, busy: 0 });
    expect(await figures(tenant)).toEqual({ inFlight: 0, keptIdle: 0, runs: expect.objectContaining({ total: 2, granted: 2, completed: 2 }) });
  });

  it("kept slots count against the budget; once the lane is contended the reserve keeps none and gives each slot back as its run ends", async () => {
    const tenant = "reserve-contended";
    const reserve = new SlotReserve(env.TENANT_BUDGET, { freshMs: 200 });
    const kept = await reserve.acquire(tenant, "run_c_1", contract, "interactive", budget(3), DEADLINE_MS);
    expect(kept.slot?.kept).toBeDefined();
    const held = later();
    await reserve.release(tenant, "run_c_1", done, undefined, held.waitUntil);

    // another isolate's runs: the idle kept slot leaves room for two, not three
    const other = budgetFor(env.TENANT_BUDGET, tenant);
    const a = direct(3);
    const b = direct(3);
    expect(await other.acquire(a)).toMatchObject({ outcome: "granted", inFlight: 2 });
    expect(await other.acquire(b)).toMatchObject({ outcome: "granted", inFlight: 3 });
    expect(await other.acquire(direct(3))).toMatchObject({ outcome: "rejected", reason: "budget_full" });

    // the refusal makes the lane contended: the reserve's next report gives its free slot back at once
    await held.settled();
    expect(reserve.kept(tenant, "interactive").slots).toBe(0);
    expect(await figures(tenant)).toMatchObject({ inFlight: 2, keptIdle: 0 });

    // while contended, a run asks the budget, keeps nothing, and its slot is free again as soon as it ends
    const asked = await reserve.acquire(tenant, "run_c_2", contract, "interactive", budget(3), DEADLINE_MS);
    expect(asked).toMatchObject({ ok: true, slot: { outcome: "granted", contended: true } });
    expect(asked.slot?.kept).toBeUndefined();
    await reserve.release(tenant, "run_c_2", done, undefined, later().waitUntil);
    expect(await figures(tenant)).toMatchObject({ inFlight: 2, keptIdle: 0 });
    await other.release(a.runId, done);
    await other.release(b.runId, done);
  });

  it("never keeps the last free slot of a lane, and asks the budget again once its last answer is older than the freshness window", async () => {
    const tenant = "reserve-fresh";
    const reserve = new SlotReserve(env.TENANT_BUDGET, { freshMs: 40 });
    const only = await reserve.acquire(tenant, "run_f_0", contract, "interactive", budget(1), DEADLINE_MS);
    expect(only).toMatchObject({ ok: true, slot: { outcome: "granted" } });
    expect(only.slot?.kept).toBeUndefined();
    await reserve.release(tenant, "run_f_0", done);

    const first = await reserve.acquire(tenant, "run_f_1", contract, "interactive", budget(4), DEADLINE_MS);
    expect(first.slot?.kept).toBeDefined();
    // reported at once (no waitUntil): the answer is fresh now, stale in 40 ms
    await reserve.release(tenant, "run_f_1", done);
    await new Promise((resolve) => setTimeout(resolve, 60));
    const second = await reserve.acquire(tenant, "run_f_2", contract, "interactive", budget(4), DEADLINE_MS);
    expect(second.slot?.reserved).toBeUndefined();
    expect(second.slot?.kept).toBeDefined();
    await reserve.release(tenant, "run_f_2", done);
  });

  it("off (freshMs 0): every run asks the budget and gives its slot back there", async () => {
    const tenant = "reserve-off";
    const reserve = new SlotReserve(env.TENANT_BUDGET, { freshMs: 0 });
    const slot = await reserve.acquire(tenant, "run_o_1", contract, "interactive", budget(4), DEADLINE_MS);
    expect(slot).toEqual({ ok: true, slot: { outcome: "granted", pool: "main", queuedMs: 0, inFlight: 1 } });
    await reserve.release(tenant, "run_o_1", done, undefined, () => {});
    expect(await figures(tenant)).toEqual({ inFlight: 0, keptIdle: 0, runs: expect.objectContaining({ total: 1, granted: 1 }) });
  });

  it("flush reports at once and gives back every free slot, so figures read right after are whole", async () => {
    const tenant = "reserve-flush";
    const reserve = new SlotReserve(env.TENANT_BUDGET, { freshMs: 5_000 });
    await reserve.acquire(tenant, "run_x_1", contract, "interactive", budget(4), DEADLINE_MS);
    await reserve.release(tenant, "run_x_1", done, undefined, () => {});
    expect(await figures(tenant)).toMatchObject({ inFlight: 1, runs: undefined });
    await reserve.flush(tenant);
    expect(reserve.kept(tenant, "interactive").slots).toBe(0);
    expect(await figures(tenant)).toEqual({ inFlight: 0, keptIdle: 0, runs: expect.objectContaining({ total: 1, completed: 1 }) });
  });
});
