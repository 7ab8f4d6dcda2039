// A tenant's governance record: its runs' figures (the samples GET /v1/metrics summarises),
// their governance facts (decision, plan and drift, approval gate), approvers' decisions,
// incident links, and its rollout: the rollback conditions of its policy, evaluated shortly
// after runs, and the phases they switched off until an operator switches them on again.
// Every rollout change is recorded in the tenant's governance session of evidence.
import { ledgerFor, type SessionLedger } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import { type ApprovalDecisionSample, type GovernanceFigures, type GovernanceSample, governanceByTeam } from "./governance.ts";
import { type LaneSummary, type RunSample, SAMPLE_RETENTION_MS, summarize } from "./percentiles.ts";
import { type Trip, tripsOf } from "./rollout.ts";
import { GOVERNANCE_SESSION, type GovernanceNote } from "./slot-types.ts";

/** How soon after a run the rollback conditions are evaluated. */
const EVALUATE_AFTER_MS = 1_000;
/** Samples kept per tenant at most. */
const SAMPLE_MAX = 100_000;
/** The policy hash rollout records carry before any run told the store its tenant's policy (SHA-256 of nothing). */
const NO_POLICY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

export class GovernanceStore {
  /** The tenant's rollback conditions (from the latest run's policy snapshot). */
  private rollout: NonNullable<GovernanceNote["rollout"]> | null = null;
  private readonly rolledBack = new Set<number>();
  private samplesSincePrune = 0;
  /** When the rollback conditions are next evaluated (Infinity: nothing to evaluate). */
  nextEvaluationAt = Number.POSITIVE_INFINITY;

  private readonly sql: SqlStorage;
  private readonly ledgers: DurableObjectNamespace<SessionLedger>;

  constructor(sql: SqlStorage, ledgers: DurableObjectNamespace<SessionLedger>) {
    this.sql = sql;
    this.ledgers = ledgers;
    sql.exec(`
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
    for (const row of sql.exec<{ phase: number }>("SELECT phase FROM rollbacks WHERE reenabled_at IS NULL")) this.rolledBack.add(row.phase);
  }

  /** The rollout phases switched off for this tenant now. */
  /** Whether the tenant has left any trace here: a run's figures, a governance fact, an approval, an incident link. */
  holdsAnything(): boolean {
    return ["samples", "governance", "approval_decisions", "incident_links"].some(
      (table) => this.sql.exec(`SELECT 1 FROM ${table} LIMIT 1`).toArray().length > 0,
    );
  }

  phasesRolledBack(): number[] {
    return [...this.rolledBack];
  }

  /** One run's figures (or a refused call's). */
  addSample(sample: RunSample): void {
    this.sql.exec(
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
      this.sql.exec("DELETE FROM samples WHERE at < ?", Date.now() - SAMPLE_RETENTION_MS);
      this.sql.exec("DELETE FROM samples WHERE seq <= (SELECT MAX(seq) FROM samples) - ?", SAMPLE_MAX);
    }
  }

  /** One finished run's governance facts; returns true when the rollback conditions are due for evaluation. */
  note({ sample, rollout }: GovernanceNote): boolean {
    this.sql.exec("INSERT OR REPLACE INTO governance (run_id, at, body) VALUES (?, ?, ?)", sample.runId, sample.at, JSON.stringify(sample));
    if (rollout) this.rollout = rollout;
    // the conditions are evaluated by the owner's alarm shortly after, not on the run's path
    if (!this.rollout || !Object.values(this.rollout.config).some((phase) => (phase?.rollback.length ?? 0) > 0)) return false;
    this.nextEvaluationAt = Math.min(this.nextEvaluationAt, Date.now() + EVALUATE_AFTER_MS);
    return true;
  }

  /** Evaluates the rollback conditions over the recent runs; a tripped phase is switched off and recorded. */
  async evaluate(now: number): Promise<void> {
    this.nextEvaluationAt = Number.POSITIVE_INFINITY;
    if (!this.rollout) return;
    const { config, tenant } = this.rollout;
    const longest = Math.max(...Object.values(config).flatMap((phase) => phase?.rollback.map((c) => c.windowMinutes) ?? [0]));
    const samples = this.sql
      .exec<{ body: string }>("SELECT body FROM governance WHERE at >= ?", now - longest * 60_000)
      .toArray()
      .map((row) => JSON.parse(row.body) as GovernanceSample);
    for (const trip of tripsOf(config, samples, this.rolledBack, now)) {
      this.sql.exec(
        "INSERT OR REPLACE INTO rollbacks (phase, tripped_at, body, reenabled_at, reenabled_by, reason) VALUES (?, ?, ?, NULL, NULL, NULL)",
        trip.phase,
        now,
        JSON.stringify(trip),
      );
      this.rolledBack.add(trip.phase);
      logEvent("warn", { event: "rollout_rolled_back", ...trip });
      await this.recordRollout("platform", { action: "rolled_back", ...trip }, tenant);
    }
  }

  /** The phases rolled back for this tenant, with what tripped them. */
  rolloutState(): { rolledBack: Array<Trip & { trippedAt: string }> } {
    const rows = this.sql
      .exec<{ tripped_at: number; body: string }>("SELECT tripped_at, body FROM rollbacks WHERE reenabled_at IS NULL ORDER BY phase")
      .toArray();
    return { rolledBack: rows.map((r) => ({ ...(JSON.parse(r.body) as Trip), trippedAt: new Date(r.tripped_at).toISOString() })) };
  }

  /** Switches a rolled-back phase on again: an explicit act, recorded with who and why. */
  async reenable(phase: number, actor: string, reason: string, tenant: string): Promise<{ ok: boolean }> {
    if (!this.rolledBack.has(phase)) return { ok: false };
    this.sql.exec("UPDATE rollbacks SET reenabled_at = ?, reenabled_by = ?, reason = ? WHERE phase = ?", Date.now(), actor, reason, phase);
    this.rolledBack.delete(phase);
    await this.recordRollout(actor, { phase, action: "reenabled", reason }, tenant);
    return { ok: true };
  }

  noteApprovalDecision(sample: ApprovalDecisionSample): void {
    this.sql.exec("INSERT INTO approval_decisions (at, team, verdict) VALUES (?, ?, ?)", sample.at, sample.team, sample.verdict);
  }

  /** Links an incident to runs (idempotent); returns how many links are new. */
  linkIncident(incidentId: string, runIds: string[], linkedBy: string): { linked: number } {
    let linked = 0;
    const now = Date.now();
    for (const runId of runIds) {
      const before = this.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM incident_links WHERE incident_id = ? AND run_id = ?", incidentId, runId).one().n;
      if (before > 0) continue;
      this.sql.exec("INSERT INTO incident_links (incident_id, run_id, at, linked_by) VALUES (?, ?, ?, ?)", incidentId, runId, now, linkedBy);
      linked++;
    }
    return { linked };
  }

  /** Governance over the last `windowMs`, for the tenant and per team. */
  governance(windowMs: number): { all: GovernanceFigures; teams: Record<string, GovernanceFigures> } {
    const since = Date.now() - Math.min(windowMs, SAMPLE_RETENTION_MS);
    const runs = this.sql
      .exec<{ body: string }>("SELECT body FROM governance WHERE at >= ?", since)
      .toArray()
      .map((r) => JSON.parse(r.body) as GovernanceSample);
    const decisions = this.sql
      .exec<{ at: number; team: string | null; verdict: "approved" | "rejected" }>("SELECT at, team, verdict FROM approval_decisions WHERE at >= ?", since)
      .toArray();
    const linked = new Set(
      this.sql
        .exec<{ run_id: string }>("SELECT DISTINCT run_id FROM incident_links")
        .toArray()
        .map((r) => r.run_id),
    );
    return governanceByTeam(runs, decisions, linked);
  }

  /** The runs' figures over the last `windowMs`: per lane and contract, percentiles of each phase and outcome counts. */
  lanes(windowMs: number): LaneSummary[] {
    const since = Date.now() - Math.min(windowMs, SAMPLE_RETENTION_MS);
    const rows = this.sql
      .exec<{
        at: number;
        lane: RunSample["lane"];
        contract: string;
        outcome: RunSample["outcome"];
        termination: string | null;
        queue_ms: number;
        start_ms: number | null;
        exec_ms: number | null;
        total_ms: number | null;
      }>("SELECT at, lane, contract, outcome, termination, queue_ms, start_ms, exec_ms, total_ms FROM samples WHERE at >= ? ORDER BY seq", since)
      .toArray();
    return summarize(
      rows.map((r) => ({
        at: r.at,
        lane: r.lane,
        contract: r.contract,
        outcome: r.outcome,
        termination: r.termination,
        queueMs: r.queue_ms,
        startMs: r.start_ms,
        execMs: r.exec_ms,
        totalMs: r.total_ms,
      })),
    );
  }

  private async recordRollout(
    actor: string,
    rollout: { phase: number; action: "rolled_back" | "reenabled" } & Record<string, unknown>,
    tenant: string,
  ): Promise<void> {
    await ledgerFor(this.ledgers, tenant, GOVERNANCE_SESSION).append({
      kind: "rollout.changed",
      runId: `run_${crypto.randomUUID()}`,
      tenant,
      actor,
      session: GOVERNANCE_SESSION,
      contract: { id: `phase-${rollout.phase}`, version: "-", class: "rollout" },
      policyHash: this.rollout?.policyHash ?? NO_POLICY,
      decision: null,
      rollout: rollout as never,
    });
  }
}
