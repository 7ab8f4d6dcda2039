// The per-session evidence ledger: a SQLite-backed Durable Object, one per
// (tenant, session). Append-only and hash-chained (chain.ts); records come back oldest
// first, by page. An alarm closes the runs that never finished (unfinished-runs.ts).
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { logEvent } from "../log/index.ts";
import { finalTermination, summarizeActivity } from "./activity-summary.ts";
import { genesisHash, recordHash } from "./chain.ts";
import {
  type Activity,
  ActivitySchema,
  type ActivitySummary,
  type EgressActivity,
  EgressActivitySchema,
  type EvidenceEntry,
  EvidenceEntrySchema,
  type EvidenceRecord,
  type RunStarted,
  type TerminationReason,
} from "./evidence-record.ts";
import { PAGE_LIMIT_MAX } from "./page-limit.ts";
import { type ClosedRun, closingRecord } from "./unfinished-runs.ts";

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
/** A record where a ledger's chain does not hold, and how. */
export type BrokenRecord = { seq: number; kind: string; runId: string; problem: "sequence_broken" | "record_altered" | "link_broken" };

/** What checkRange answers: a range that holds, with what an export signs, or why not. */
export type RangeCheck =
  | {
      ok: true;
      genesis: string;
      headSeq: number;
      /** What the range's first record links to: the record before it, or the genesis (seq 0). */
      prev: { seq: number; hash: string };
      last: { seq: number; hash: string };
      records: number;
      policyHashes: string[];
    }
  | { ok: false; reason: "bad_range"; detail: string }
  | { ok: false; reason: "broken"; broken: BrokenRecord };

/** What admitEgress answers: admitted (the run's count so far), or why not (the refusal is recorded). */
export type EgressAdmission = { ok: true; admitted: number } | { ok: false; reason: "run_finished" | "subrequest_limit" | "malformed_activity" };

export type PageResult = { ok: true; page: EvidencePage } | { ok: false; reason: "bad_page_request"; detail: string };

/** How long past its deadline an unfinished run waits before the ledger's alarm closes it, unless the caller says otherwise. */
export const RECONCILE_GRACE_MS_DEFAULT = 30_000;

export type AppendOptions = {
  /** Signed-task ids to spend with a start record (see TaskId). */
  consume?: readonly TaskId[];
  /** For a start record: how long past its deadline the alarm waits before closing it as lost. */
  reconcileGraceMs?: number;
};

/** The ledger's chain as it stands: its genesis, and the seq and hash of its newest record. */
export type ChainHead = { tenant: string; session: string; genesis: string; seq: number; hash: string };

export class SessionLedger extends DurableObject<Env> {
  /** When the alarm is set for, as far as this instance knows (undefined: not read yet). */
  private alarmAt: number | null | undefined;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    const sql = ctx.storage.sql;
    sql.exec(`
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
        body TEXT NOT NULL,
        prev_hash TEXT,
        hash TEXT
      );
      CREATE INDEX IF NOT EXISTS records_by_run ON records (run_id);
      CREATE TABLE IF NOT EXISTS chain (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        genesis TEXT NOT NULL,
        head_seq INTEGER NOT NULL,
        head_hash TEXT NOT NULL
      );
      CREATE TABLE IF NOT EXISTS open_runs (
        run_id TEXT PRIMARY KEY,
        start_seq INTEGER NOT NULL,
        reconcile_at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS open_runs_by_due ON open_runs (reconcile_at);
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
      CREATE TABLE IF NOT EXISTS egress_admitted (
        run_id TEXT PRIMARY KEY,
        n INTEGER NOT NULL
      );
    `);
    if (this.chainLegacyRecords()) void ctx.blockConcurrencyWhile(() => this.scheduleNextAlarm());
    // Records are append-only: storage itself refuses to change or remove one.
    sql.exec(`
      CREATE TRIGGER IF NOT EXISTS records_no_update BEFORE UPDATE ON records
        BEGIN SELECT RAISE(ABORT, 'evidence records are append-only'); END;
      CREATE TRIGGER IF NOT EXISTS records_no_delete BEFORE DELETE ON records
        BEGIN SELECT RAISE(ABORT, 'evidence records are append-only'); END;
    `);
  }

  /**
   * A ledger written before records were chained gets its chain now, oldest first, and its
   * unfinished runs are listed for the alarm. Returns whether it did anything.
   */
  private chainLegacyRecords(): boolean {
    const sql = this.ctx.storage.sql;
    const columns = sql
      .exec<{ name: string }>("SELECT name FROM pragma_table_info('records')")
      .toArray()
      .map((c) => c.name);
    if (!columns.includes("hash")) sql.exec("ALTER TABLE records ADD COLUMN prev_hash TEXT; ALTER TABLE records ADD COLUMN hash TEXT;");
    const owner = sql.exec<{ tenant: string; session: string }>("SELECT tenant, session FROM ledger WHERE id = 1").toArray()[0];
    if (!owner || sql.exec("SELECT 1 FROM chain WHERE id = 1").toArray().length > 0) return false;
    const genesis = genesisHash(owner.tenant, owner.session);
    let head = { seq: 0, hash: genesis };
    const rows = sql.exec<{ seq: number; at: string; body: string }>("SELECT seq, at, body FROM records ORDER BY seq").toArray();
    for (const row of rows) {
      const hash = recordHash({ ...JSON.parse(row.body), seq: row.seq, at: row.at, prevHash: head.hash });
      sql.exec("UPDATE records SET prev_hash = ?, hash = ? WHERE seq = ?", head.hash, hash, row.seq);
      head = { seq: row.seq, hash };
    }
    sql.exec("INSERT INTO chain (id, genesis, head_seq, head_hash) VALUES (1, ?, ?, ?)", genesis, head.seq, head.hash);
    for (const row of rows) {
      const entry = JSON.parse(row.body) as EvidenceEntry;
      if (entry.kind === "run.started" && !rows.some((other) => other.seq > row.seq && (JSON.parse(other.body) as EvidenceEntry).runId === entry.runId)) {
        sql.exec(
          "INSERT OR IGNORE INTO open_runs (run_id, start_seq, reconcile_at) VALUES (?, ?, ?)",
          entry.runId,
          row.seq,
          entry.deadlineAt + RECONCILE_GRACE_MS_DEFAULT,
        );
      }
    }
    return true;
  }

  /**
   * Appends one record, chained to the one before it; refuses a malformed one or one that
   * belongs to another tenant or session. With `consume`, it also spends those signed-task
   * ids in the same step: if any was spent before, nothing is spent, the record is kept
   * with its verdict set to `task_replayed`, and the caller is told (so a replayed task never
   * runs). A task names its tenant and session under its signature, so any replay reaches
   * this same ledger. A start record arms the alarm that closes the run if it never finishes.
   */
  async append(entry: EvidenceEntry, options: AppendOptions = {}): Promise<AppendResult> {
    const checked = EvidenceEntrySchema.safeParse(entry);
    if (!checked.success) return { ok: false, reason: "malformed_entry", detail: checked.error.message.slice(0, 500) };
    // One transaction: the record, its link, the head, the spent ids and the open-run entry
    // are written together or not at all (a failed write leaves no half-spent task).
    const result = this.ctx.storage.transactionSync(() => this.write(checked.data, options));
    if (result.ok && result.reconcileAt !== null) await this.armAlarm(result.reconcileAt);
    if (!result.ok) return result;
    const { reconcileAt: _armed, ...appended } = result;
    return appended;
  }

  private write(parsed: EvidenceEntry, options: AppendOptions): (AppendResult & { ok: false }) | (AppendResult & { ok: true; reconcileAt: number | null }) {
    const sql = this.ctx.storage.sql;
    const at = new Date().toISOString();
    const owner = sql.exec<{ tenant: string; session: string }>("SELECT tenant, session FROM ledger WHERE id = 1").toArray()[0];
    if (!owner) {
      sql.exec("INSERT INTO ledger (id, tenant, session, created_at) VALUES (1, ?, ?, ?)", parsed.tenant, parsed.session, at);
      const genesis = genesisHash(parsed.tenant, parsed.session);
      sql.exec("INSERT INTO chain (id, genesis, head_seq, head_hash) VALUES (1, ?, 0, ?)", genesis, genesis);
    } else if (owner.tenant !== parsed.tenant || owner.session !== parsed.session) {
      return { ok: false, reason: "foreign_ledger", detail: "the entry belongs to another tenant or session" };
    }
    const consume = options.consume ?? [];
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
      const admitted = sql.exec<{ n: number }>("SELECT n FROM egress_admitted WHERE run_id = ?", parsed.runId).toArray()[0]?.n ?? 0;
      parsed.activity = summarizeActivity(this.activityOf(parsed.runId), admitted);
      parsed.termination = finalTermination(parsed.termination, parsed.activity);
      if (sql.exec("SELECT 1 FROM records WHERE run_id = ? AND kind = 'run.finished'", parsed.runId).toArray().length > 0) parsed.late = true;
      finished = { termination: parsed.termination, activity: parsed.activity };
    }
    // Link and write in one synchronous step: nothing else runs in this object in between.
    const head = sql.exec<{ head_seq: number; head_hash: string }>("SELECT head_seq, head_hash FROM chain WHERE id = 1").one();
    const seq = head.head_seq + 1;
    const body = JSON.stringify(parsed);
    const hash = recordHash({ ...JSON.parse(body), seq, at, prevHash: head.head_hash });
    sql.exec(
      "INSERT INTO records (seq, run_id, kind, at, body, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
      seq,
      parsed.runId,
      parsed.kind,
      at,
      body,
      head.head_hash,
      hash,
    );
    sql.exec("UPDATE chain SET head_seq = ?, head_hash = ? WHERE id = 1", seq, hash);
    let reconcileAt: number | null = null;
    if (parsed.kind === "run.started") {
      reconcileAt = parsed.deadlineAt + (options.reconcileGraceMs ?? RECONCILE_GRACE_MS_DEFAULT);
      sql.exec("INSERT OR IGNORE INTO open_runs (run_id, start_seq, reconcile_at) VALUES (?, ?, ?)", parsed.runId, seq, reconcileAt);
    } else {
      sql.exec("DELETE FROM open_runs WHERE run_id = ?", parsed.runId);
    }
    return { ok: true, seq, at, replayed, reconcileAt, ...(finished ? { finished } : {}) };
  }

  /** The chain's head, or null for a session never written. */
  async head(): Promise<ChainHead | null> {
    const row = this.ctx.storage.sql
      .exec<{ tenant: string; session: string; genesis: string; head_seq: number; head_hash: string }>(
        "SELECT l.tenant, l.session, c.genesis, c.head_seq, c.head_hash FROM ledger l JOIN chain c ON c.id = l.id",
      )
      .toArray()[0];
    return row ? { tenant: row.tenant, session: row.session, genesis: row.genesis, seq: row.head_seq, hash: row.head_hash } : null;
  }

  /**
   * Walks records `from`..`to` as storage holds them, recomputing each one's hash and link,
   * one row at a time (a range of any size in bounded memory). Answers what an export signs
   * (the hash the range links to, its last record, the policy snapshots it points at), or
   * the first record where the chain does not hold, so nothing broken is ever signed.
   */
  async checkRange(from: number, to: number): Promise<RangeCheck> {
    const sql = this.ctx.storage.sql;
    const chain = sql.exec<{ genesis: string; head_seq: number }>("SELECT genesis, head_seq FROM chain WHERE id = 1").toArray()[0];
    if (!chain || !Number.isSafeInteger(from) || !Number.isSafeInteger(to) || from < 1 || to < from || to > chain.head_seq) {
      return { ok: false, reason: "bad_range", detail: `the ledger holds seq 1 to ${chain?.head_seq ?? 0}` };
    }
    let prev = { seq: 0, hash: chain.genesis };
    if (from > 1) {
      const before = sql.exec<{ hash: string }>("SELECT hash FROM records WHERE seq = ?", from - 1).toArray()[0];
      if (!before) return { ok: false, reason: "broken", broken: { seq: from - 1, kind: "(missing)", runId: "", problem: "sequence_broken" } };
      prev = { seq: from - 1, hash: before.hash };
    }
    let last = prev;
    let count = 0;
    const policies = new Set<string>();
    const rows = sql.exec<{ seq: number; at: string; body: string; prev_hash: string; hash: string }>(
      "SELECT seq, at, body, prev_hash, hash FROM records WHERE seq >= ? AND seq <= ? ORDER BY seq",
      from,
      to,
    );
    for (const row of rows) {
      const entry = JSON.parse(row.body) as EvidenceEntry;
      const at = { seq: row.seq, kind: entry.kind, runId: entry.runId };
      const problem =
        row.seq !== last.seq + 1
          ? "sequence_broken"
          : recordHash({ ...entry, seq: row.seq, at: row.at, prevHash: row.prev_hash }) !== row.hash
            ? "record_altered"
            : row.prev_hash !== last.hash
              ? "link_broken"
              : null;
      if (problem) return { ok: false, reason: "broken", broken: { ...at, problem } };
      policies.add(entry.policyHash);
      last = { seq: row.seq, hash: row.hash };
      count++;
    }
    if (last.seq !== to) return { ok: false, reason: "broken", broken: { seq: last.seq + 1, kind: "(missing)", runId: "", problem: "sequence_broken" } };
    return { ok: true, genesis: chain.genesis, headSeq: chain.head_seq, prev, last, records: count, policyHashes: [...policies].sort() };
  }

  /** Sets the alarm for `at` unless it already fires sooner. */
  private async armAlarm(at: number): Promise<void> {
    this.alarmAt ??= await this.ctx.storage.getAlarm();
    if (this.alarmAt !== null && this.alarmAt <= at) return;
    await this.ctx.storage.setAlarm(at);
    this.alarmAt = at;
  }

  /** Arms the alarm for the next open run, or clears it when none is left. */
  private async scheduleNextAlarm(): Promise<void> {
    const next = this.ctx.storage.sql.exec<{ due: number | null }>("SELECT MIN(reconcile_at) AS due FROM open_runs").one().due;
    this.alarmAt = null;
    if (next === null) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(next);
    this.alarmAt = next;
  }

  /** Closes every run still open past its deadline plus grace: the runtime lost it. */
  override async alarm(): Promise<void> {
    const now = Date.now();
    const due = this.openRuns("SELECT start_seq FROM open_runs WHERE reconcile_at <= ?", now);
    const closed = await this.close(due, now);
    for (const run of closed) logEvent("warn", { event: "run_reconciled", by: "ledger_alarm", ...run });
    await this.scheduleNextAlarm();
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
   * Admits one outbound request of a run before it leaves, or refuses it and records the
   * refusal, in one step: a run that has a finish record sends nothing more
   * (`run_finished`), and one that was admitted `limit` requests gets no more
   * (`subrequest_limit`). The count and the finish record live in this one object, so no
   * request slips between the run's last admission and its finish.
   */
  async admitEgress(runId: string, limit: number, attempt: EgressActivity): Promise<EgressAdmission> {
    const checked = EgressActivitySchema.safeParse(attempt);
    if (!checked.success || !Number.isInteger(limit) || limit < 0) return { ok: false, reason: "malformed_activity" };
    const sql = this.ctx.storage.sql;
    return this.ctx.storage.transactionSync((): EgressAdmission => {
      const finished = sql.exec("SELECT 1 FROM records WHERE run_id = ? AND kind = 'run.finished'", runId).toArray().length > 0;
      const admitted = sql.exec<{ n: number }>("SELECT n FROM egress_admitted WHERE run_id = ?", runId).toArray()[0]?.n ?? 0;
      const refusal = finished ? "run_finished" : admitted >= limit ? "subrequest_limit" : null;
      if (refusal === null) {
        sql.exec("INSERT INTO egress_admitted (run_id, n) VALUES (?, 1) ON CONFLICT (run_id) DO UPDATE SET n = n + 1", runId);
        return { ok: true, admitted: admitted + 1 };
      }
      const denied: EgressActivity = {
        ...checked.data,
        decision: "denied",
        reason: refusal,
        status: null,
        bytesOut: 0,
        bytesIn: 0,
        ...(finished ? { late: true } : {}),
      };
      sql.exec("INSERT INTO activity (run_id, body) VALUES (?, ?)", runId, JSON.stringify(denied));
      return { ok: false, reason: refusal };
    });
  }

  /** The start records of the open runs that `startSeqQuery` selects (by start_seq), oldest first. */
  private openRuns(startSeqQuery: string, ...bindings: number[]): Array<{ seq: number; at: string; body: string }> {
    return this.ctx.storage.sql
      .exec<{ seq: number; at: string; body: string }>(`SELECT seq, at, body FROM records WHERE seq IN (${startSeqQuery}) ORDER BY seq`, ...bindings)
      .toArray();
  }

  private async close(rows: ReadonlyArray<{ seq: number; at: string; body: string }>, now: number): Promise<ClosedRun[]> {
    const closed: ClosedRun[] = [];
    for (const row of rows) {
      const started = { ...(JSON.parse(row.body) as RunStarted), seq: row.seq, at: row.at };
      const record = closingRecord(started, now);
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
      .exec<{ seq: number; at: string; body: string; prev_hash: string; hash: string }>(
        "SELECT seq, at, body, prev_hash, hash FROM records WHERE seq > ? ORDER BY seq LIMIT ?",
        request.after,
        request.limit + 1,
      )
      .toArray();
    const more = rows.length > request.limit;
    const records = rows
      .slice(0, request.limit)
      .map((row): EvidenceRecord => ({ ...(JSON.parse(row.body) as EvidenceEntry), seq: row.seq, at: row.at, prevHash: row.prev_hash, hash: row.hash }));
    return { ok: true, page: { records, nextCursor: more ? (records.at(-1)?.seq ?? null) : null } };
  }

  /** The records of these runs (at most 500 runs), in ledger order: how a batch's evidence is read by batch id. */
  async recordsOfRuns(runIds: string[]): Promise<EvidenceRecord[]> {
    const ids = runIds.slice(0, 500);
    if (ids.length === 0) return [];
    return this.ctx.storage.sql
      .exec<{ seq: number; at: string; body: string; prev_hash: string; hash: string }>(
        `SELECT seq, at, body, prev_hash, hash FROM records WHERE run_id IN (${ids.map(() => "?").join(", ")}) ORDER BY seq`,
        ...ids,
      )
      .toArray()
      .map((row): EvidenceRecord => ({ ...(JSON.parse(row.body) as EvidenceEntry), seq: row.seq, at: row.at, prevHash: row.prev_hash, hash: row.hash }));
  }

  /** How many records the ledger holds (0 for a session never seen). */
  count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM records").one().n;
  }
}
