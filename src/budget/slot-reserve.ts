// An isolate's reserve of budget slots. Without it every run costs two round trips to its
// tenant's budget object (lease, release); with it, a run whose isolate already keeps a free
// slot of the tenant's lane takes that slot here, and gives it back here.
//
// The budget stays the one place that counts: a kept slot is a lease in the tenant's budget
// object like any other (under a `reserve:` id, with an expiry), so kept slots count against
// the tenant's limit and a dead isolate's slots expire. The budget lets a reserve keep a slot
// only while the lane is uncontended (no one waits, nothing was refused in the last second,
// and room is left after the grant); while it is contended, every run asks and every slot
// goes back as its run ends, exactly as without a reserve.
//
// Shortly after its runs end the reserve reports to the budget in one round trip: the runs'
// figures and governance facts, which kept slots are busy, used or idle. The budget renews
// the ones in use and takes back the rest (all free ones while contended), and answers
// whether the lane is contended and which rollout phases are rolled back. A slot is taken
// here only while that answer is fresher than `freshMs`, so what the reserve knows is never
// older than that.
import type { Contract } from "../contracts/index.ts";
import { logEvent } from "../log/index.ts";
import { acquireSlot, budgetFor, LEASE_GRACE_MS, releaseSlot, type SlotResult } from "./budget-client.ts";
import type { Budget } from "./budget-schema.ts";
import type { RunSample } from "./percentiles.ts";
import { type GovernanceNote, type Lane, RESERVE_PREFIX, type SlotRequest } from "./slot-types.ts";
import type { TenantBudget } from "./tenant-budget.ts";

/** What a run reports when it gives its slot back. */
export type SlotSample = Omit<RunSample, "lane" | "contract">;

/** Figures buffered per tenant and lane before they are sent at once, whatever the time. */
const BUFFER_MAX = 500;

type Kept = {
  slotId: string;
  expiresAt: number;
  /** The run in the slot (null: free). */
  runId: string | null;
  /** A run held it since the last report. */
  used: boolean;
  /** Reported free while a report is on its way: the budget may be taking it back. */
  returning: boolean;
};

type Pool = {
  tenant: string;
  lane: Lane;
  slots: Map<string, Kept>;
  limits: SlotRequest["limits"];
  /** The lease a run of the lane needs (its deadline plus grace); a kept slot is renewed for this plus the freshness window. */
  leaseMs: number;
  /** When the budget last answered (0: never, or forgotten). */
  answeredAt: number;
  contended: boolean;
  rolledBack: number[];
  samples: RunSample[];
  notes: GovernanceNote[];
  reporting: Promise<void> | null;
  scheduled: Promise<void> | null;
  /** Scheduled reports started so far: a later one supersedes an earlier one's give-back. */
  rounds: number;
};

export class SlotReserve {
  private readonly namespace: DurableObjectNamespace<TenantBudget>;
  private readonly freshMs: number;
  private readonly holder = crypto.randomUUID();
  private counter = 0;
  private readonly pools = new Map<string, Pool>();
  /** Runs in a kept slot: where to give it back, and the contract their figures count under. */
  private readonly runs = new Map<string, { pool: Pool; kept: Kept; contract: string }>();

  /** `freshMs`: how fresh the budget's last answer must be for a kept slot to be used (SLOT_RESERVE_FRESH_MS); 0 turns the reserve off: every run asks the budget and gives its slot back there. */
  constructor(namespace: DurableObjectNamespace<TenantBudget>, options: { freshMs: number }) {
    this.namespace = namespace;
    this.freshMs = Math.max(0, options.freshMs);
  }

  /** A slot for one run: a free kept one if the reserve has it and knows the lane is quiet, else from the budget. */
  async acquire(tenant: string, runId: string, contract: Contract, lane: Lane, budget: Budget, deadlineMs: number): Promise<SlotResult> {
    if (this.freshMs === 0) return await acquireSlot(this.namespace, tenant, runId, contract, lane, budget, deadlineMs);
    const limits = { maxInFlight: budget[lane].maxInFlight, queueMax: budget[lane].queueMax, downgradeInFlight: budget.downgradeInFlight };
    const leaseMs = deadlineMs + LEASE_GRACE_MS;
    const pool = this.pool(tenant, lane, limits, leaseMs);
    const now = Date.now();
    if (!pool.contended && now - pool.answeredAt < this.freshMs && pool.slots.size <= limits.maxInFlight) {
      for (const kept of pool.slots.values()) {
        if (kept.runId !== null || kept.returning || kept.expiresAt < now + leaseMs) continue;
        kept.runId = runId;
        kept.used = true;
        this.runs.set(runId, { pool, kept, contract: contract.id });
        let busy = 0;
        for (const other of pool.slots.values()) if (other.runId !== null) busy++;
        return {
          ok: true,
          slot: {
            outcome: "granted",
            pool: "main",
            queuedMs: 0,
            inFlight: busy,
            reserved: true,
            ...(pool.rolledBack.length > 0 ? { rolledBack: pool.rolledBack } : {}),
          },
        };
      }
    }
    const slotId = `${RESERVE_PREFIX}${this.holder}:${++this.counter}`;
    // kept, the slot must outlive a run taken from it while the budget's answer is still fresh
    const result = await acquireSlot(this.namespace, tenant, runId, contract, lane, budget, deadlineMs, { slotId, leaseMs: leaseMs + this.freshMs });
    if (result.slot?.contended !== undefined) this.heard(pool, result.slot.contended, result.slot.rolledBack ?? []);
    if (result.ok && result.slot.kept) {
      const kept: Kept = { slotId, expiresAt: result.slot.kept.expiresAt, runId, used: true, returning: false };
      pool.slots.set(slotId, kept);
      this.runs.set(runId, { pool, kept, contract: contract.id });
    }
    return result;
  }

  /**
   * Gives the run's slot back with its figures (and governance facts). A kept slot stays in
   * the reserve and the figures are reported shortly after, on `waitUntil`; while the lane is
   * contended the report goes at once, so the slot reaches whoever waits for it.
   */
  async release(tenant: string, runId: string, sample: SlotSample, note?: GovernanceNote, waitUntil?: (promise: Promise<unknown>) => void): Promise<void> {
    const held = this.runs.get(runId);
    if (!held) {
      await releaseSlot(this.namespace, tenant, runId, sample, note);
      return;
    }
    this.runs.delete(runId);
    const { pool, kept } = held;
    kept.runId = null;
    pool.samples.push({ ...sample, lane: pool.lane, contract: held.contract });
    if (note) pool.notes.push(note);
    if (pool.contended || !waitUntil || pool.samples.length >= BUFFER_MAX) {
      await this.report(pool, false);
      return;
    }
    // Only the release that schedules the reports keeps its request open for them; the others'
    // figures ride along. A request held open keeps its sandbox's isolate alive with it, and
    // requests let go together have their isolates torn down together, on the one thread.
    const scheduled = this.reportSoon(pool);
    if (scheduled) waitUntil(scheduled);
  }

  /** A run's governance facts when it held no slot (refused before the budget, or by it). */
  async noteRun(tenant: string, note: GovernanceNote): Promise<void> {
    await budgetFor(this.namespace, tenant).noteRun(note.sample, note.rollout);
  }

  /** Reports every pool (of one tenant) now and gives back every free slot: before figures are read. */
  async flush(tenant?: string): Promise<void> {
    await Promise.all([...this.pools.values()].filter((p) => tenant === undefined || p.tenant === tenant).map((p) => this.report(p, true)));
  }

  /** Makes the next run of the tenant ask its budget (its rollout just changed here). */
  forget(tenant: string): void {
    for (const pool of this.pools.values()) if (pool.tenant === tenant) pool.answeredAt = 0;
  }

  /** The slots kept for a tenant's lane, and how many runs are in them (for tests and diagnostics). */
  kept(tenant: string, lane: Lane): { slots: number; busy: number } {
    const pool = this.pools.get(`${tenant}\n${lane}`);
    let busy = 0;
    for (const kept of pool?.slots.values() ?? []) if (kept.runId !== null) busy++;
    return { slots: pool?.slots.size ?? 0, busy };
  }

  private pool(tenant: string, lane: Lane, limits: SlotRequest["limits"], leaseMs: number): Pool {
    const key = `${tenant}\n${lane}`;
    let pool = this.pools.get(key);
    if (!pool) {
      pool = {
        tenant,
        lane,
        slots: new Map(),
        limits,
        leaseMs,
        answeredAt: 0,
        contended: false,
        rolledBack: [],
        samples: [],
        notes: [],
        reporting: null,
        scheduled: null,
        rounds: 0,
      };
      this.pools.set(key, pool);
    }
    pool.limits = limits;
    pool.leaseMs = leaseMs;
    return pool;
  }

  private heard(pool: Pool, contended: boolean, rolledBack: number[]): void {
    pool.answeredAt = Date.now();
    pool.contended = contended;
    pool.rolledBack = rolledBack;
  }

  /**
   * The next report, half a freshness window after the last answer, if none is due yet (null
   * otherwise: the one due carries what was buffered since). Once it is on its way, the next
   * release schedules the one after. When no release did by then, the same caller reports once
   * more, half a window later, and gives back the slots still free: the lane went quiet.
   */
  private reportSoon(pool: Pool): Promise<void> | null {
    if (pool.scheduled) return null;
    const halfWindow = async () => {
      const wait = pool.answeredAt + this.freshMs / 2 - Date.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
    };
    const scheduled = (async () => {
      await halfWindow();
      pool.scheduled = null;
      const round = ++pool.rounds;
      await this.report(pool, false);
      const free = [...pool.slots.values()].some((kept) => kept.runId === null);
      // the budget unreachable (answeredAt 0): its leases expire on their own
      if (pool.rounds !== round || pool.answeredAt === 0 || (!free && pool.samples.length === 0 && pool.notes.length === 0)) return;
      await halfWindow();
      if (pool.rounds === round && !pool.scheduled) await this.report(pool, true);
    })();
    pool.scheduled = scheduled;
    return scheduled;
  }

  /** One round trip: the figures buffered, and the kept slots as they stand; the budget renews or takes back each. */
  private async report(pool: Pool, giveBack: boolean): Promise<void> {
    while (pool.reporting) await pool.reporting;
    const samples = pool.samples.splice(0);
    const notes = pool.notes.splice(0);
    const slots = [...pool.slots.values()].map((kept) => ({ slotId: kept.slotId, busy: kept.runId !== null, used: kept.used }));
    if (slots.length === 0 && samples.length === 0 && notes.length === 0) return;
    for (const kept of pool.slots.values()) {
      kept.returning = kept.runId === null;
      kept.used = kept.runId !== null;
    }
    const { promise, resolve } = Promise.withResolvers<void>();
    pool.reporting = promise;
    try {
      const answer = await budgetFor(this.namespace, pool.tenant).settle({
        lane: pool.lane,
        limits: pool.limits,
        leaseMs: pool.leaseMs + this.freshMs,
        slots,
        giveBack,
        samples,
        notes,
      });
      this.heard(pool, answer.contended, answer.rolledBack);
      for (const { slotId } of slots) {
        const kept = pool.slots.get(slotId);
        if (!kept) continue;
        kept.returning = false;
        const expiresAt = answer.kept[slotId];
        if (expiresAt !== undefined) kept.expiresAt = expiresAt;
        // taken back (or expired there): a busy one is dropped once its run ends
        else if (kept.runId === null) pool.slots.delete(slotId);
        else kept.expiresAt = 0;
      }
      for (const [slotId, kept] of pool.slots) if (kept.expiresAt === 0 && kept.runId === null) pool.slots.delete(slotId);
    } catch (error) {
      // The report may or may not have arrived: keep the figures for the next one (a figure may
      // then count twice, never be lost), and stop using the kept slots (their leases expire there).
      pool.samples.unshift(...samples.slice(-BUFFER_MAX));
      pool.notes.unshift(...notes.slice(-BUFFER_MAX));
      pool.answeredAt = 0;
      for (const [slotId, kept] of pool.slots) {
        if (kept.runId === null) pool.slots.delete(slotId);
        else kept.expiresAt = 0;
      }
      logEvent("error", { event: "budget_report_failed", tenant: pool.tenant, lane: pool.lane, error: String(error) });
    } finally {
      pool.reporting = null;
      resolve();
    }
  }
}
