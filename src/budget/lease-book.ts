// A tenant's leases of run slots per lane (interactive, batch), each with an expiry so a run
// that crashed cannot hold its slot forever. When a lane is full, the contract's backpressure
// mode decides: reject at once, wait in a bounded FIFO queue, or take a slot of the (small)
// downgrade pool. Isolates' reserves keep slots here too (under `reserve:` ids): they count
// like any other, and are kept only while the lane is uncontended.
//
// The leases live in memory as well as in SQLite: counting and expiring them is on every
// call's path, so it reads the copy; every change is written through, and a new instance
// (after an eviction) rebuilds the copy from the table.
import { logEvent } from "../log/index.ts";
import type { RunSample } from "./percentiles.ts";
import { type Lane, RESERVE_PREFIX, type ReserveAnswer, type ReserveReport, type SlotOutcome, type SlotRequest } from "./slot-types.ts";

type Lease = { lane: Lane; pool: "main" | "downgrade"; contract: string; acquiredAt: number; expiresAt: number; idle?: boolean };
type Waiter = { request: SlotRequest; enqueuedAt: number; settle: (outcome: SlotOutcome) => void; timer: ReturnType<typeof setTimeout> };

/** Recent run durations per lane, for the retry-after estimate. */
const RECENT = 64;
/** A lane that refused, delayed or downgraded a call within this long counts as contended: reserves keep no slots of it. */
const CONTENDED_FOR_MS = 1_000;

export type LeaseBookHooks = {
  /** A refused call, for the tenant's figures. */
  refused(sample: RunSample): void;
  /** A slot was leased: the owner's alarm must cover its expiry (`earliestExpiry`). */
  leased(): void;
};

export class LeaseBook {
  private readonly leases = new Map<string, Lease>();
  private readonly waiters: Record<Lane, Waiter[]> = { interactive: [], batch: [] };
  private readonly lastLimits: Partial<Record<Lane, SlotRequest["limits"]>> = {};
  private readonly recent: Record<Lane, number[]> = { interactive: [], batch: [] };
  /** When each lane last refused, delayed or downgraded a call. */
  private readonly pressureAt: Record<Lane, number> = { interactive: 0, batch: 0 };
  /** The earliest expiry among the leases (Infinity: none). */
  earliestExpiry = Number.POSITIVE_INFINITY;

  private readonly sql: SqlStorage;
  private readonly hooks: LeaseBookHooks;

  constructor(sql: SqlStorage, hooks: LeaseBookHooks) {
    this.sql = sql;
    this.hooks = hooks;
    sql.exec(`
      CREATE TABLE IF NOT EXISTS leases (
        run_id TEXT PRIMARY KEY,
        lane TEXT NOT NULL,
        pool TEXT NOT NULL,
        contract TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at);
    `);
    for (const row of sql.exec<{ run_id: string; lane: Lane; pool: "main" | "downgrade"; contract: string; acquired_at: number; expires_at: number }>(
      "SELECT run_id, lane, pool, contract, acquired_at, expires_at FROM leases",
    )) {
      this.leases.set(row.run_id, { lane: row.lane, pool: row.pool, contract: row.contract, acquiredAt: row.acquired_at, expiresAt: row.expires_at });
      this.earliestExpiry = Math.min(this.earliestExpiry, row.expires_at);
    }
  }

  /** Leases a slot, waits for one, takes a downgrade slot, or says when to retry. */
  async acquire(request: SlotRequest): Promise<SlotOutcome> {
    const outcome = await this.leaseOrWait(request);
    if (outcome.outcome !== "granted") this.pressureAt[request.lane] = Date.now();
    return request.keep === undefined ? outcome : { ...outcome, contended: this.contended(request.lane, request.limits) };
  }

  /**
   * Frees a run's slot, if it still holds one, and hands it to the next waiter; the run's
   * length feeds the retry-after estimate. Returns the lease it freed.
   */
  release(runId: string, totalMs: number | null): Pick<Lease, "lane" | "contract"> | undefined {
    const lease = this.leases.get(runId);
    if (!lease) return undefined;
    this.leases.delete(runId);
    this.sql.exec("DELETE FROM leases WHERE run_id = ?", runId);
    if (totalMs !== null) this.remember(lease.lane, totalMs);
    this.pump(lease.lane);
    return lease;
  }

  /** A run that ran in a kept slot: its length counts like any other's. */
  remember(lane: Lane, totalMs: number): void {
    const recent = this.recent[lane];
    recent.push(totalMs);
    if (recent.length > RECENT) recent.shift();
  }

  /**
   * A reserve's report on the slots it keeps: free slots it no longer needs (or every free one,
   * while the lane is contended) come back and go to waiters; the rest are renewed.
   */
  settle(report: Pick<ReserveReport, "lane" | "limits" | "leaseMs" | "slots" | "giveBack">): Omit<ReserveAnswer, "rolledBack"> {
    const now = Date.now();
    this.lastLimits[report.lane] = report.limits;
    this.expire(now);
    const contended = this.contended(report.lane, report.limits);
    const kept: Record<string, number> = {};
    let freed = false;
    for (const slot of report.slots) {
      const lease = this.leases.get(slot.slotId);
      if (!lease || !slot.slotId.startsWith(RESERVE_PREFIX)) continue; // expired, or never kept: the reserve forgets it
      if (!slot.busy && (report.giveBack || contended || !slot.used)) {
        this.leases.delete(slot.slotId);
        this.sql.exec("DELETE FROM leases WHERE run_id = ?", slot.slotId);
        freed = true;
        continue;
      }
      lease.expiresAt = now + report.leaseMs;
      lease.idle = !slot.busy;
      this.sql.exec("UPDATE leases SET expires_at = ? WHERE run_id = ?", lease.expiresAt, slot.slotId);
      kept[slot.slotId] = lease.expiresAt;
    }
    if (freed) this.pump(report.lane);
    return { kept, contended: this.contended(report.lane, report.limits) };
  }

  /** Runs in flight (kept slots no run used at their last report left out), kept idle slots and waiters, per lane. */
  counts(): { inFlight: Record<Lane, number>; keptIdle: Record<Lane, number>; waiting: Record<Lane, number> } {
    this.expire(Date.now());
    const keptIdle = { interactive: this.keptIdle("interactive"), batch: this.keptIdle("batch") };
    return {
      inFlight: { interactive: this.inFlight("interactive") - keptIdle.interactive, batch: this.inFlight("batch") - keptIdle.batch },
      keptIdle,
      waiting: { interactive: this.waiters.interactive.length, batch: this.waiters.batch.length },
    };
  }

  /** Drops leases past their expiry (their runs crashed or were lost) and lets waiters have the slots. */
  expire(now: number): void {
    if (now < this.earliestExpiry) return;
    const expired = [...this.leases].filter(([, lease]) => lease.expiresAt <= now);
    this.sql.exec("DELETE FROM leases WHERE expires_at <= ?", now);
    this.earliestExpiry = Number.POSITIVE_INFINITY;
    for (const [runId, lease] of this.leases) {
      if (lease.expiresAt <= now) this.leases.delete(runId);
      else this.earliestExpiry = Math.min(this.earliestExpiry, lease.expiresAt);
    }
    for (const [runId, lease] of expired) {
      logEvent("warn", { event: "lease_expired", runId, lane: lease.lane, heldMs: now - lease.acquiredAt });
    }
    for (const lane of new Set(expired.map(([, l]) => l.lane))) this.pump(lane);
  }

  /** Whether a reserve may keep (more) slots of this lane: no one waits, nothing was refused lately, and room is left. */
  private contended(lane: Lane, limits: SlotRequest["limits"]): boolean {
    return this.waiters[lane].length > 0 || Date.now() - this.pressureAt[lane] < CONTENDED_FOR_MS || this.inFlight(lane, "main") >= limits.maxInFlight;
  }

  private async leaseOrWait(request: SlotRequest): Promise<SlotOutcome> {
    const now = Date.now();
    this.lastLimits[request.lane] = request.limits;
    this.expire(now);
    const inFlight = this.inFlight(request.lane, "main");
    if (inFlight < request.limits.maxInFlight && this.waiters[request.lane].length === 0) {
      // a reserve keeps the slot only while the lane has room to spare after this grant
      const keep =
        request.keep?.slotId.startsWith(RESERVE_PREFIX) && now - this.pressureAt[request.lane] >= CONTENDED_FOR_MS && inFlight + 1 < request.limits.maxInFlight
          ? request.keep
          : undefined;
      const expiresAt = this.lease(keep ? { ...request, runId: keep.slotId, leaseMs: Math.max(request.leaseMs, keep.leaseMs) } : request, "main", now);
      return { outcome: "granted", pool: "main", queuedMs: 0, inFlight: inFlight + 1, ...(keep ? { kept: { slotId: keep.slotId, expiresAt } } : {}) };
    }
    if (request.mode === "downgrade") {
      const downgraded = this.inFlight(request.lane, "downgrade");
      if (downgraded < request.limits.downgradeInFlight) {
        this.lease(request, "downgrade", now);
        return { outcome: "downgraded", pool: "downgrade", queuedMs: 0, inFlight: downgraded + 1 };
      }
      return this.reject(request, "downgrade_full", 0, inFlight);
    }
    if (request.mode === "delay" && this.waiters[request.lane].length < request.limits.queueMax) {
      return await new Promise<SlotOutcome>((settle) => {
        const waiter: Waiter = {
          request,
          enqueuedAt: now,
          settle,
          timer: setTimeout(() => {
            const queue = this.waiters[request.lane];
            const at = queue.indexOf(waiter);
            if (at >= 0) queue.splice(at, 1);
            settle(this.reject(request, "wait_expired", Date.now() - now, this.inFlight(request.lane, "main")));
          }, request.maxWaitMs),
        };
        this.waiters[request.lane].push(waiter);
      });
    }
    return this.reject(request, request.mode === "delay" ? "queue_full" : "budget_full", 0, inFlight);
  }

  private reject(request: SlotRequest, reason: Extract<SlotOutcome, { outcome: "rejected" }>["reason"], queuedMs: number, inFlight: number): SlotOutcome {
    const retryAfterMs = this.retryAfter(request.lane, request.leaseMs);
    this.hooks.refused({
      at: Date.now(),
      lane: request.lane,
      contract: request.contract,
      outcome: "rejected",
      termination: null,
      queueMs: queuedMs,
      startMs: null,
      execMs: null,
      totalMs: null,
    });
    return { outcome: "rejected", reason, retryAfterMs, queuedMs, inFlight };
  }

  /** When a slot is likely to free: the typical run's length minus the age of the oldest run in flight. */
  private retryAfter(lane: Lane, leaseMs: number): number {
    const recent = [...this.recent[lane]].sort((a, b) => a - b);
    const typical = recent.length > 0 ? (recent[Math.floor(recent.length / 2)] ?? 100) : 100;
    let oldest = Number.POSITIVE_INFINITY;
    // a kept slot's age says nothing about the run in it
    for (const [id, lease] of this.leases)
      if (lease.lane === lane && lease.pool === "main" && !id.startsWith(RESERVE_PREFIX)) oldest = Math.min(oldest, lease.acquiredAt);
    const age = Number.isFinite(oldest) ? Date.now() - oldest : 0;
    return Math.round(Math.min(leaseMs, Math.max(25, typical - age)) + this.waiters[lane].length * typical);
  }

  private lease(request: SlotRequest, pool: "main" | "downgrade", now: number): number {
    const expiresAt = now + request.leaseMs;
    this.leases.set(request.runId, { lane: request.lane, pool, contract: request.contract, acquiredAt: now, expiresAt });
    this.sql.exec(
      "INSERT OR REPLACE INTO leases (run_id, lane, pool, contract, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      request.runId,
      request.lane,
      pool,
      request.contract,
      now,
      expiresAt,
    );
    this.earliestExpiry = Math.min(this.earliestExpiry, expiresAt);
    this.hooks.leased();
    return expiresAt;
  }

  /** Slots leased on the lane (in the pool), kept ones included: all of them count against the budget. */
  private inFlight(lane: Lane, pool?: "main" | "downgrade"): number {
    let n = 0;
    for (const lease of this.leases.values()) if (lease.lane === lane && (pool === undefined || lease.pool === pool)) n++;
    return n;
  }

  /** Slots kept by reserves that no run used at their last report. */
  private keptIdle(lane: Lane): number {
    let n = 0;
    for (const lease of this.leases.values()) if (lease.lane === lane && lease.idle) n++;
    return n;
  }

  /** Hands free slots to waiters, first come first served. */
  private pump(lane: Lane): void {
    const limits = this.lastLimits[lane];
    const queue = this.waiters[lane];
    if (!limits) return;
    while (queue.length > 0 && this.inFlight(lane, "main") < limits.maxInFlight) {
      const waiter = queue.shift();
      if (!waiter) break;
      clearTimeout(waiter.timer);
      const now = Date.now();
      this.lease(waiter.request, "main", now);
      waiter.settle({ outcome: "delayed", pool: "main", queuedMs: now - waiter.enqueuedAt, inFlight: this.inFlight(lane, "main") });
    }
  }
}
