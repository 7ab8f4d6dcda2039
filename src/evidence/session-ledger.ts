// The per-session evidence ledger: a SQLite-backed Durable Object, one per
// (tenant, session). Append-only; records come back oldest first, by page.
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { finalTermination, summarizeActivity } from "./activity-summary.ts";
import {
  type Activity,
  ActivitySchema,
  type ActivitySummary,
  type EvidenceEntry,
  EvidenceEntrySchema,
  type EvidenceRecord,
  type RunStarted,
  type TerminationReason,
} from "./evidence-record.ts";
import { PAGE_LIMIT_MAX } from "./page-limit.ts";
import { type ClosedRun, closingRecord, type LossCause } from "./unfinished-runs.ts";

const PageRequestSchema = z.object({ after: z.int().min(0), limit: z.int().min(1).max(PAGE_LIMIT_MAX) });

export type EvidencePage = { records: EvidenceRecord[]; nextCursor: number | null };

/** Refusals are results, not throws: the caller decides (and RPC rejections are noisy). */
export type AppendResult =
  | {
      ok: true;
      seq: number;
      at: string;
      replayed: boolean;
      /** For a finish record: the termination as recorded, and the run's activity. */
      finished?: { termination: TerminationReason; activity: ActivitySummary };
    }
  | { ok: false; reason: "malformed_entry" | "foreign_ledger"; detail: string };

/**
 * A signed task's id, spent with the record that starts its run: `intent` is a planner's
 * task, `task` the policy layer's. Ids are namespaced by their issuer (e.g. `planner:<id>:<jti>`).
 */
export type TaskId = { jti: string; exp: number; role: "intent" | "task" };

/** Consumed ids are kept this long past their expiry, beyond any clock skew a verifier allows. */
const TASK_ID_RETENTION_S = 300;
export type PageResult = { ok: true; page: EvidencePage } | { ok: false; reason: "bad_page_request"; detail: string };

export class SessionLedger extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS ledger (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        tenant TEXT NOT NULL,
        session TEXT NOT NULL,
        created_at TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS records (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS records_by_run ON records (run_id);
      CREATE TABLE IF NOT EXISTS task_ids (
        jti TEXT PRIMARY KEY,
        exp INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS task_ids_by_exp ON task_ids (exp);
      CREATE TABLE IF NOT EXISTS activity (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id TEXT NOT NULL,
        body TEXT NOT NULL
      );
      CREATE INDEX IF NOT EXISTS activity_by_run ON activity (run_id, seq);
    `);
  }

  /**
   * Appends one record; refuses a malformed one or one that belongs to another tenant or
   * session. With `consume`, it also spends those signed-task ids in the same step: if any
   * was spent before, nothing is spent, the record is kept with its verdict set to
   * `task_replayed`, and the caller is told (so a replayed task never runs). A task names
   * its tenant and session under its signature, so any replay reaches this same ledger.
   */
  async append(entry: EvidenceEntry, consume: readonly TaskId[] = []): Promise<AppendResult> {
    const checked = EvidenceEntrySchema.safeParse(entry);
    if (!checked.success) return { ok: false, reason: "malformed_entry", detail: checked.error.message.slice(0, 500) };
    const parsed = checked.data;
    const sql = this.ctx.storage.sql;
    const at = new Date().toISOString();
    const owner = sql.exec<{ tenant: string; session: string }>("SELECT tenant, session FROM ledger WHERE id = 1").toArray()[0];
    if (!owner) {
      sql.exec("INSERT INTO ledger (id, tenant, session, created_at) VALUES (1, ?, ?, ?)", parsed.tenant, parsed.session, at);
    } else if (owner.tenant !== parsed.tenant || owner.session !== parsed.session) {
      return { ok: false, reason: "foreign_ledger", detail: "the entry belongs to another tenant or session" };
    }
    const spent = consume.length > 0 ? this.spend(consume) : [];
    const replayed = spent.length > 0;
    if (replayed && parsed.kind === "run.started") {
      // Only the ids that were spent before are marked; the others were never used.
      if (parsed.task && spent.includes("task")) parsed.task.verdict = "task_replayed";
      if (parsed.intent.source === "planner" && spent.includes("intent")) parsed.intent.verdict = "task_replayed";
    }
    let finished: { termination: TerminationReason; activity: ActivitySummary } | undefined;
    if (parsed.kind === "run.finished") {
      // The ledger, not the caller, says what the run did beyond its isolate.
      parsed.activity = summarizeActivity(this.activityOf(parsed.runId));
      parsed.termination = finalTermination(parsed.termination, parsed.activity);
      finished = { termination: parsed.termination, activity: parsed.activity };
    }
    const { seq } = sql
      .exec<{ seq: number }>(
        "INSERT INTO records (run_id, kind, at, body) VALUES (?, ?, ?, ?) RETURNING seq",
        parsed.runId,
        parsed.kind,
        at,
        JSON.stringify(parsed),
      )
      .one();
    return { ok: true, seq, at, replayed, ...(finished ? { finished } : {}) };
  }

  /**
   * Records one egress attempt or capability call of a run, as it happens, so a run that
   * dies half way still shows what it reached. One that arrives after its run finished is
   * kept and marked late.
   */
  async recordActivity(runId: string, activity: Activity): Promise<{ ok: true } | { ok: false; reason: "malformed_activity"; detail: string }> {
    const checked = ActivitySchema.safeParse(activity);
    if (!checked.success) return { ok: false, reason: "malformed_activity", detail: checked.error.message.slice(0, 500) };
    const sql = this.ctx.storage.sql;
    const finishedAlready = sql.exec("SELECT 1 FROM records WHERE run_id = ? AND kind = 'run.finished'", runId).toArray().length > 0;
    sql.exec("INSERT INTO activity (run_id, body) VALUES (?, ?)", runId, JSON.stringify(finishedAlready ? { ...checked.data, late: true } : checked.data));
    return { ok: true };
  }

  /**
   * Closes every run of this session that started before `before` and never finished
   * (the runtime lost it), with a finish record saying how it ended. Idempotent.
   */
  async reconcile(before: number, cause: LossCause): Promise<ClosedRun[]> {
    const now = Date.now();
    const open = this.ctx.storage.sql
      .exec<{ seq: number; at: string; body: string }>(
        "SELECT s.seq, s.at, s.body FROM records s WHERE s.kind = 'run.started' AND NOT EXISTS (SELECT 1 FROM records f WHERE f.run_id = s.run_id AND f.kind = 'run.finished') ORDER BY s.seq",
      )
      .toArray()
      .filter((row) => Date.parse(row.at) < before);
    const closed: ClosedRun[] = [];
    for (const row of open) {
      const started = { ...(JSON.parse(row.body) as RunStarted), seq: row.seq, at: row.at };
      const record = closingRecord(started, cause, now);
      const appended = await this.append(record);
      if (!appended.ok || !record.error) continue;
      closed.push({
        runId: started.runId,
        contractId: started.contract.id,
        termination: appended.finished?.termination ?? record.termination,
        error: record.error,
        policyHash: started.policyHash,
        decision: started.decision,
      });
    }
    return closed;
  }

  /** Every recorded activity of a run, in order (late ones included). */
  async activity(runId: string): Promise<Activity[]> {
    return this.activityOf(runId);
  }

  private activityOf(runId: string): Activity[] {
    return this.ctx.storage.sql
      .exec<{ body: string }>("SELECT body FROM activity WHERE run_id = ? ORDER BY seq", runId)
      .toArray()
      .map((row) => JSON.parse(row.body) as Activity);
  }

  /** Spends every id, or none if any was spent already; forgets ids long expired. Returns the roles of ids spent before. */
  private spend(ids: readonly TaskId[]): TaskId["role"][] {
    const sql = this.ctx.storage.sql;
    sql.exec("DELETE FROM task_ids WHERE exp < ?", Math.floor(Date.now() / 1000) - TASK_ID_RETENTION_S);
    const spentBefore = ids.filter(({ jti }) => sql.exec("SELECT 1 FROM task_ids WHERE jti = ?", jti).toArray().length > 0).map(({ role }) => role);
    if (spentBefore.length > 0) return spentBefore;
    for (const { jti, exp } of ids) sql.exec("INSERT INTO task_ids (jti, exp) VALUES (?, ?)", jti, exp);
    return [];
  }

  /** Records with seq > after, oldest first. */
  async page(after: number, limit: number): Promise<PageResult> {
    const checked = PageRequestSchema.safeParse({ after, limit });
    if (!checked.success) return { ok: false, reason: "bad_page_request", detail: checked.error.message.slice(0, 500) };
    const request = checked.data;
    const rows = this.ctx.storage.sql
      .exec<{ seq: number; at: string; body: string }>("SELECT seq, at, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", request.after, request.limit + 1)
      .toArray();
    const more = rows.length > request.limit;
    const records = rows.slice(0, request.limit).map((row) => ({ ...(JSON.parse(row.body) as EvidenceEntry), seq: row.seq, at: row.at }));
    return { ok: true, page: { records, nextCursor: more ? (records.at(-1)?.seq ?? null) : null } };
  }

  /** How many records the ledger holds (0 for a session never seen). */
  count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM records").one().n;
  }
}
