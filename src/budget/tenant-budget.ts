// A tenant's concurrency budget: one Durable Object per tenant leases run slots per lane
// (interactive, batch), each lease with an expiry so a run that crashed cannot hold its
// slot forever. When a lane is full, the contract's backpressure mode decides: reject at
// once, wait in a bounded FIFO queue, or take a slot of the (small) downgrade pool.
//
// The object only does bookkeeping: runs load their isolates in the Worker request that
// asked for the slot, never here, so a tenant's runs are not funnelled through one object
// (a Durable Object may have at most 10 dynamic workers in flight; this one has none).
// It also keeps the tenant's recent run samples, which GET /v1/metrics summarises.
import { DurableObject } from "cloudflare:workers";
import { ledgerFor } from "../evidence/ledger-stub.ts";
import type { Rollout } from "../policy/index.ts";
import { logEvent } from "../redaction/index.ts";
import { type ApprovalDecisionSample, type GovernanceFigures, type GovernanceSample, governanceByTeam } from "./governance.ts";
import { type LaneSummary, type RunSample, SAMPLE_RETENTION_MS, summarize } from "./percentiles.ts";
import { type Trip, tripsOf } from "./rollout.ts";
import { RESERVE_PREFIX } from "./slot-reserve.ts";

/** The session in which a tenant's rollout changes are recorded (auditors read it like any other). */
export const GOVERNANCE_SESSION = "governance";

/** A finished run's governance facts, and the rollout conditions in force for its tenant (from its policy snapshot). */
export type GovernanceNote = { sample: GovernanceSample; rollout?: { config: Rollout; policyHash: string; tenant: string } };
/** How soon after a run the rollback conditions are evaluated. */
const EVALUATE_AFTER_MS = 1_000;

export type Lane = "interactive" | "batch";
export type BackpressureMode = "reject" | "delay" | "downgrade";

export type SlotRequest = {
  lane: Lane;
  runId: string;
  /** The contract asked for (a downgraded run still counts under it in the request). */
  contract: string;
  mode: BackpressureMode;
  /** delay: the longest the call may wait for a slot. */
  maxWaitMs: number;
  /** How long the lease lives if it is never released (the run's deadline plus a grace). */
  leaseMs: number;
  /** From the tenant's policy snapshot: the limits that apply to this request. */
  limits: { maxInFlight: number; queueMax: number; downgradeInFlight: number };
  /**
   * The caller isolate's reserve asks to keep the slot after this run, under this id and for
   * this long unless renewed (see slot-reserve.ts). Granted only while the lane is uncontended
   * and has room to spare.
   */
  keep?: { slotId: string; leaseMs: number };
};

export type SlotOutcome = (
  | { outcome: "granted" | "delayed"; pool: "main"; queuedMs: number; inFlight: number }
  | { outcome: "downgraded"; pool: "downgrade"; queuedMs: number; inFlight: number }
  | {
      outcome: "rejected";
      reason: "budget_full" | "queue_full" | "wait_expired" | "downgrade_full";
      retryAfterMs: number;
      queuedMs: number;
      inFlight: number;
    }
) & {
  /** The rollout phases rolled back for this tenant right now (absent: none). */
  rolledBack?: number[];
  /** With `keep`: the slot is leased to the reserve under that id, until `expiresAt` unless renewed. */
  kept?: { slotId: string; expiresAt: number };
  /** Granted by an isolate's reserve from a slot it keeps, without asking the budget (slot-reserve.ts); inFlight then counts that reserve's busy slots. */
  reserved?: true;
  /** With `keep`: whether the lane is contended (waiters, a recent refusal, or no room to spare); a reserve then keeps nothing. */
  contended?: boolean;
};

/** What an isolate's reserve tells the budget about the slots it keeps, and the figures of the runs that used them. */
export type ReserveReport = {
  lane: Lane;
  limits: SlotRequest["limits"];
  /** How long each slot kept lives from now unless renewed again. */
  leaseMs: number;
  /** `busy`: a run holds it now; `used`: a run held it since the last report. */
  slots: Array<{ slotId: string; busy: boolean; used: boolean }>;
  /** Give back every free slot (the reserve is being emptied). */
  giveBack: boolean;
  samples: RunSample[];
  notes: GovernanceNote[];
};

/** The budget's answer: which slots the reserve still holds (with their new expiry), and whether the lane is contended. */
export type ReserveAnswer = { kept: Record<string, number>; contended: boolean; rolledBack: number[] };

type Waiter = { request: SlotRequest; enqueuedAt: number; settle: (outcome: SlotOutcome) => void; timer: ReturnType<typeof setTimeout> };

/** And at most this many are kept per tenant. */
const SAMPLE_MAX = 100_000;
/** Recent run durations per lane, for the retry-after estimate. */
const RECENT = 64;
/** A lane that refused, delayed or downgraded a call within this long counts as contended: reserves keep no slots of it. */
const CONTENDED_FOR_MS = 1_000;

export class TenantBudget extends DurableObject<Env> {
  private readonly waiters: Record<Lane, Waiter[]> = { interactive: [], batch: [] };
  private readonly lastLimits: Partial<Record<Lane, SlotRequest["limits"]>> = {};
  private readonly recent: Record<Lane, number[]> = { interactive: [], batch: [] };
  /** The tenant's rollback conditions (from the latest run's policy snapshot) and the phases rolled back. */
  private rollout: { config: Rollout; policyHash: string; tenant: string } | null = null;
  private readonly rolledBack = new Set<number>();
  private nextEvaluationAt = Number.POSITIVE_INFINITY;
  private samplesSincePrune = 0;
  /**
   * The leases, in memory as well as in SQLite: counting and expiring them is on every call's
   * path, so it reads this copy; every change is written through, and a new instance (after an
   * eviction) rebuilds it from the table.
   */
  private readonly leases = new Map<
    string,
    { lane: Lane; pool: "main" | "downgrade"; contract: string; acquiredAt: number; expiresAt: number; idle?: boolean }
  >();
  /** When each lane last refused, delayed or downgraded a call. */
  private readonly pressureAt: Record<Lane, number> = { interactive: 0, batch: 0 };
  /** The earliest expiry among the leases (Infinity: none), and when the alarm is set for. */
  private earliestExpiry = Number.POSITIVE_INFINITY;
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS leases (
        run_id TEXT PRIMARY KEY,
        lane TEXT NOT NULL,
        pool TEXT NOT NULL,
        contract TEXT NOT NULL,
        acquired_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS leases_by_expiry ON leases (expires_at);
      CREATE TABLE IF NOT EXISTS samples (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        lane TEXT NOT NULL,
        contract TEXT NOT NULL,
        outcome TEXT NOT NULL,
        termination TEXT,
        queue_ms REAL NOT NULL,
        start_ms REAL,
        exec_ms REAL,
        total_ms REAL
      );
      CREATE INDEX IF NOT EXISTS samples_by_at ON samples (at);
      CREATE TABLE IF NOT EXISTS governance (
        run_id TEXT PRIMARY KEY,
        at INTEGER NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS governance_by_at ON governance (at);
      CREATE TABLE IF NOT EXISTS approval_decisions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,
        team TEXT,
        verdict TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS incident_links (
        incident_id TEXT NOT NULL,
        run_id TEXT NOT NULL,
        at INTEGER NOT NULL,
        linked_by TEXT NOT NULL,
        PRIMARY KEY (incident_id, run_id)
      );
      CREATE INDEX IF NOT EXISTS incident_links_by_run ON incident_links (run_id);
      CREATE TABLE IF NOT EXISTS rollbacks (
        phase INTEGER PRIMARY KEY,
        tripped_at INTEGER NOT NULL,
        body TEXT NOT NULL,
        reenabled_at INTEGER,
        reenabled_by TEXT,
        reason TEXT
      );
    `);
    for (const row of ctx.storage.sql.exec<{ phase: number }>("SELECT phase FROM rollbacks WHERE reenabled_at IS NULL")) this.rolledBack.add(row.phase);
    for (const row of ctx.storage.sql.exec<{
      run_id: string;
      lane: Lane;
      pool: "main" | "downgrade";
      contract: string;
      acquired_at: number;
      expires_at: number;
    }>("SELECT run_id, lane, pool, contract, acquired_at, expires_at FROM leases")) {
      this.leases.set(row.run_id, { lane: row.lane, pool: row.pool, contract: row.contract, acquiredAt: row.acquired_at, expiresAt: row.expires_at });
      this.earliestExpiry = Math.min(this.earliestExpiry, row.expires_at);
    }
  }

  /** Leases a slot, waits for one, takes a downgrade slot, or says when to retry; and names the phases rolled back. */
  async acquire(request: SlotRequest): Promise<SlotOutcome> {
    const outcome = await this.leaseOrWait(request);
    if (outcome.outcome !== "granted") this.pressureAt[request.lane] = Date.now();
    const told = request.keep === undefined ? outcome : { ...outcome, contended: this.contended(request.lane, request.limits) };
    return this.rolledBack.size > 0 ? { ...told, rolledBack: [...this.rolledBack] } : told;
  }

  /** Whether a reserve may keep (more) slots of this lane: no one waits, nothing was refused lately, and room is left. */
  private contended(lane: Lane, limits: SlotRequest["limits"]): boolean {
    return this.waiters[lane].length > 0 || Date.now() - this.pressureAt[lane] < CONTENDED_FOR_MS || this.inFlight(lane, "main") >= limits.maxInFlight;
  }

  /**
   * An isolate's reserve reports the slots it keeps and the runs that used them: free slots it
   * no longer needs (or every free one, while the lane is contended) come back and go to waiters,
   * the rest are renewed; the runs' figures and governance facts are recorded.
   */
  async settle(report: ReserveReport): Promise<ReserveAnswer> {
    const now = Date.now();
    this.lastLimits[report.lane] = report.limits;
    this.expireLeases(now);
    for (const note of report.notes) await this.note(note.sample, note.rollout);
    for (const sample of report.samples) {
      this.addSample(sample);
      if (sample.totalMs !== null) this.remember(sample.lane, sample.totalMs);
    }
    const contended = this.contended(report.lane, report.limits);
    const kept: Record<string, number> = {};
    let freed = false;
    for (const slot of report.slots) {
      const lease = this.leases.get(slot.slotId);
      if (!lease || !slot.slotId.startsWith(RESERVE_PREFIX)) continue; // expired, or never kept: the reserve forgets it
      if (!slot.busy && (report.giveBack || contended || !slot.used)) {
        this.leases.delete(slot.slotId);
        this.ctx.storage.sql.exec("DELETE FROM leases WHERE run_id = ?", slot.slotId);
        freed = true;
        continue;
      }
      lease.expiresAt = now + report.leaseMs;
      lease.idle = !slot.busy;
      this.ctx.storage.sql.exec("UPDATE leases SET expires_at = ? WHERE run_id = ?", lease.expiresAt, slot.slotId);
      kept[slot.slotId] = lease.expiresAt;
    }
    if (freed) this.pump(report.lane);
    return { kept, contended: this.contended(report.lane, report.limits), rolledBack: [...this.rolledBack] };
  }

  private async leaseOrWait(request: SlotRequest): Promise<SlotOutcome> {
    const now = Date.now();
    this.lastLimits[request.lane] = request.limits;
    this.expireLeases(now);
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

  /**
   * Frees the run's slot (if it still holds one), records its figures, and hands the slot to
   * the next waiter. A finished run's governance facts come along (`note`), so a run that held a
   * slot costs one round trip here after it ends, not two.
   */
  async release(
    runId: string,
    sample: Omit<RunSample, "lane" | "contract" | "outcome"> & { outcome: RunSample["outcome"] },
    note?: GovernanceNote,
  ): Promise<{ released: boolean }> {
    if (note) await this.note(note.sample, note.rollout);
    const lease = this.leases.get(runId);
    if (!lease) return { released: false };
    this.leases.delete(runId);
    this.ctx.storage.sql.exec("DELETE FROM leases WHERE run_id = ?", runId);
    this.addSample({ ...sample, lane: lease.lane, contract: lease.contract });
    if (sample.totalMs !== null) this.remember(lease.lane, sample.totalMs);
    this.pump(lease.lane);
    return { released: true };
  }

  private remember(lane: Lane, totalMs: number): void {
    const recent = this.recent[lane];
    recent.push(totalMs);
    if (recent.length > RECENT) recent.shift();
  }

  /** One finished run's governance facts (policy decision, plan and drift, approval gate). */
  async noteRun(sample: GovernanceSample, rollout?: GovernanceNote["rollout"]): Promise<void> {
    await this.note(sample, rollout);
  }

  private async note(sample: GovernanceSample, rollout?: GovernanceNote["rollout"]): Promise<void> {
    this.ctx.storage.sql.exec("INSERT OR REPLACE INTO governance (run_id, at, body) VALUES (?, ?, ?)", sample.runId, sample.at, JSON.stringify(sample));
    if (rollout) this.rollout = rollout;
    // the conditions are evaluated by the alarm shortly after, not on the run's path
    if (this.rollout && Object.values(this.rollout.config).some((phase) => (phase?.rollback.length ?? 0) > 0)) {
      this.nextEvaluationAt = Math.min(this.nextEvaluationAt, Date.now() + EVALUATE_AFTER_MS);
      await this.armAlarm();
    }
  }

  /** The phases rolled back for this tenant, with what tripped them. */
  async rolloutState(): Promise<{ rolledBack: Array<Trip & { trippedAt: string }> }> {
    const rows = this.ctx.storage.sql
      .exec<{ tripped_at: number; body: string }>("SELECT tripped_at, body FROM rollbacks WHERE reenabled_at IS NULL ORDER BY phase")
      .toArray();
    return { rolledBack: rows.map((r) => ({ ...(JSON.parse(r.body) as Trip), trippedAt: new Date(r.tripped_at).toISOString() })) };
  }

  /** Switches a rolled-back phase on again: an explicit act, recorded with who and why. */
  async reenable(phase: number, actor: string, reason: string, tenant: string): Promise<{ ok: boolean }> {
    if (!this.rolledBack.has(phase)) return { ok: false };
    const now = Date.now();
    this.ctx.storage.sql.exec("UPDATE rollbacks SET reenabled_at = ?, reenabled_by = ?, reason = ? WHERE phase = ?", now, actor, reason, phase);
    this.rolledBack.delete(phase);
    await this.recordRollout(actor, { phase, action: "reenabled", reason }, tenant);
    return { ok: true };
  }

  /** Evaluates the rollback conditions over the recent runs; a tripped phase is switched off and recorded. */
  private async evaluateRollout(now: number): Promise<void> {
    this.nextEvaluationAt = Number.POSITIVE_INFINITY;
    if (!this.rollout) return;
    const longest = Math.max(...Object.values(this.rollout.config).flatMap((phase) => phase?.rollback.map((c) => c.windowMinutes) ?? [0]));
    const samples = this.ctx.storage.sql
      .exec<{ body: string }>("SELECT body FROM governance WHERE at >= ?", now - longest * 60_000)
      .toArray()
      .map((row) => JSON.parse(row.body) as GovernanceSample);
    for (const trip of tripsOf(this.rollout.config, samples, this.rolledBack, now)) {
      this.ctx.storage.sql.exec(
        "INSERT OR REPLACE INTO rollbacks (phase, tripped_at, body, reenabled_at, reenabled_by, reason) VALUES (?, ?, ?, NULL, NULL, NULL)",
        trip.phase,
        now,
        JSON.stringify(trip),
      );
      this.rolledBack.add(trip.phase);
      logEvent("warn", { event: "rollout_rolled_back", ...trip });
      await this.recordRollout("platform", { action: "rolled_back", ...trip }, this.rollout.tenant);
    }
  }

  private async recordRollout(
    actor: string,
    rollout: { phase: number; action: "rolled_back" | "reenabled" } & Record<string, unknown>,
    tenant: string,
  ): Promise<void> {
    await ledgerFor(this.env.SESSION_LEDGER, tenant, GOVERNANCE_SESSION).append({
      kind: "rollout.changed",
      runId: `run_${crypto.randomUUID()}`,
      tenant,
      actor,
      session: GOVERNANCE_SESSION,
      contract: { id: `phase-${rollout.phase}`, version: "-", class: "rollout" },
      policyHash: this.rollout?.policyHash ?? "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
      decision: null,
      rollout: rollout as never,
    });
  }

  async noteApprovalDecision(sample: ApprovalDecisionSample): Promise<void> {
    this.ctx.storage.sql.exec("INSERT INTO approval_decisions (at, team, verdict) VALUES (?, ?, ?)", sample.at, sample.team, sample.verdict);
  }

  /** Links an incident to runs (idempotent); returns how many links are new. */
  async linkIncident(incidentId: string, runIds: string[], linkedBy: string): Promise<{ linked: number }> {
    const sql = this.ctx.storage.sql;
    let linked = 0;
    const now = Date.now();
    for (const runId of runIds) {
      const before = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM incident_links WHERE incident_id = ? AND run_id = ?", incidentId, runId).one().n;
      if (before > 0) continue;
      sql.exec("INSERT INTO incident_links (incident_id, run_id, at, linked_by) VALUES (?, ?, ?, ?)", incidentId, runId, now, linkedBy);
      linked++;
    }
    return { linked };
  }

  /** Governance over the last `windowMs`, for the tenant and per team. */
  async governance(windowMs: number): Promise<{ all: GovernanceFigures; teams: Record<string, GovernanceFigures> }> {
    const since = Date.now() - Math.min(windowMs, SAMPLE_RETENTION_MS);
    const sql = this.ctx.storage.sql;
    const runs = sql
      .exec<{ body: string }>("SELECT body FROM governance WHERE at >= ?", since)
      .toArray()
      .map((r) => JSON.parse(r.body) as GovernanceSample);
    const decisions = sql
      .exec<{ at: number; team: string | null; verdict: "approved" | "rejected" }>("SELECT at, team, verdict FROM approval_decisions WHERE at >= ?", since)
      .toArray();
    const linked = new Set(
      sql
        .exec<{ run_id: string }>("SELECT DISTINCT run_id FROM incident_links")
        .toArray()
        .map((r) => r.run_id),
    );
    return governanceByTeam(runs, decisions, linked);
  }

  /** The tenant's figures over the last `windowMs`: per lane and contract, percentiles of each phase and outcome counts. */
  async metrics(
    windowMs: number,
  ): Promise<{ windowMs: number; inFlight: Record<Lane, number>; keptIdle: Record<Lane, number>; waiting: Record<Lane, number>; lanes: LaneSummary[] }> {
    const since = Date.now() - Math.min(windowMs, SAMPLE_RETENTION_MS);
    const rows = this.ctx.storage.sql
      .exec<{
        at: number;
        lane: Lane;
        contract: string;
        outcome: RunSample["outcome"];
        termination: string | null;
        queue_ms: number;
        start_ms: number | null;
        exec_ms: number | null;
        total_ms: number | null;
      }>("SELECT at, lane, contract, outcome, termination, queue_ms, start_ms, exec_ms, total_ms FROM samples WHERE at >= ? ORDER BY seq", since)
      .toArray();
    const samples: RunSample[] = rows.map((r) => ({
      at: r.at,
      lane: r.lane,
      contract: r.contract,
      outcome: r.outcome,
      termination: r.termination,
      queueMs: r.queue_ms,
      startMs: r.start_ms,
      execMs: r.exec_ms,
      totalMs: r.total_ms,
    }));
    this.expireLeases(Date.now());
    return {
      windowMs,
      inFlight: { interactive: this.inFlight("interactive") - this.keptIdle("interactive"), batch: this.inFlight("batch") - this.keptIdle("batch") },
      keptIdle: { interactive: this.keptIdle("interactive"), batch: this.keptIdle("batch") },
      waiting: { interactive: this.waiters.interactive.length, batch: this.waiters.batch.length },
      lanes: summarize(samples),
    };
  }

  /** Leases whose run never released them expire here too, so a crashed run's slot comes back without new traffic. */
  override async alarm(): Promise<void> {
    this.alarmAt = null;
    this.expireLeases(Date.now());
    if (Date.now() >= this.nextEvaluationAt) await this.evaluateRollout(Date.now());
    await this.armAlarm();
  }

  private reject(request: SlotRequest, reason: Extract<SlotOutcome, { outcome: "rejected" }>["reason"], queuedMs: number, inFlight: number): SlotOutcome {
    const retryAfterMs = this.retryAfter(request.lane, request.leaseMs);
    this.addSample({
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
    this.earliestExpiry = Math.min(this.earliestExpiry, expiresAt);
    this.ctx.storage.sql.exec(
      "INSERT OR REPLACE INTO leases (run_id, lane, pool, contract, acquired_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
      request.runId,
      request.lane,
      pool,
      request.contract,
      now,
      now + request.leaseMs,
    );
    void this.armAlarm();
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

  /** Drops leases past their expiry (their runs crashed or were lost) and lets waiters have the slots. */
  private expireLeases(now: number): void {
    if (now < this.earliestExpiry) return;
    const expired = [...this.leases].filter(([, lease]) => lease.expiresAt <= now);
    this.ctx.storage.sql.exec("DELETE FROM leases WHERE expires_at <= ?", now);
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

  private addSample(sample: RunSample): void {
    const sql = this.ctx.storage.sql;
    sql.exec(
      "INSERT INTO samples (at, lane, contract, outcome, termination, queue_ms, start_ms, exec_ms, total_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      sample.at,
      sample.lane,
      sample.contract,
      sample.outcome,
      sample.termination,
      sample.queueMs,
      sample.startMs,
      sample.execMs,
      sample.totalMs,
    );
    if (++this.samplesSincePrune >= 1_000) {
      this.samplesSincePrune = 0;
      sql.exec("DELETE FROM samples WHERE at < ?", Date.now() - SAMPLE_RETENTION_MS);
      sql.exec("DELETE FROM samples WHERE seq <= (SELECT MAX(seq) FROM samples) - ?", SAMPLE_MAX);
    }
  }

  /** Sets the alarm for the earliest expiry, unless it is already set for then or sooner (remembered, not read each time). */
  private async armAlarm(): Promise<void> {
    const next = Math.min(this.earliestExpiry, this.nextEvaluationAt);
    if (!Number.isFinite(next)) return;
    if (this.alarmAt === undefined) this.alarmAt = await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= next && this.alarmAt > Date.now()) return;
    this.alarmAt = next;
    await this.ctx.storage.setAlarm(next);
  }
}
