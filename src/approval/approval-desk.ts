// A tenant's approval desk: the requests for human approval of runs whose contract needs
// one. A request is bound to the exact task (tenant, requester, contract and version, code
// hash, input hash, policy hash, data class): the same call again finds it; any change is
// another task and needs another approval. An approval is used once, within its expiry.
// Approvers hold the approver role in the same tenant and are never the requester.
// Every decision is appended to the requester's session ledger.
import { DurableObject } from "cloudflare:workers";
import { ledgerFor } from "../evidence/ledger-stub.ts";

export const APPROVER_ROLE = "approver";

export type ApprovalState = "pending" | "approved" | "rejected" | "used" | "expired";

/** What the pipeline asks about: the exact task, and what to show the approver. */
export type ApprovalAsk = {
  /** SHA-256 of the canonical binding (see approvalKey). */
  key: string;
  runId: string;
  tenant: string;
  requester: string;
  session: string;
  contract: { id: string; version: string; class: string };
  codeSha256: string;
  inputSha256: string;
  policyHash: string;
  dataClass: string;
  /** The team whose grant covers the task (for the governance figures). */
  team: string | null;
  plan: string[] | null;
  /** Shown to the approver: the code itself, and the input (JSON text). */
  code: string;
  inputJson: string;
  ttlMs: number;
};

/** One operation call an approval is for (null on a run's approval); argsJson is redacted. */
export type ApprovalCall = { connector: string; operation: string; argsSha256: string; argsJson: string };

/** A call of a journaled run, as its connector binding asks about it (the task's binding as for a run approval, and the call). */
export type CallAsk = Omit<ApprovalAsk, "plan" | "code" | "inputJson"> & {
  /** The task's key (approvalKey): the journal a retry replays. */
  thread: string;
  connector: string;
  operation: string;
  argsSha256: string;
  argsJson: string;
  needsApproval: boolean;
  /**
   * replay: before anything is sent (is it a call the source recorded? is the run still going?);
   * approve: just before the call leaves, once the upstream checked out (spend, or pause).
   */
  phase: "replay" | "approve";
};

/** A call's recorded outcome: the value it returned (JSON text), or the refusal it threw. */
export type JournalOutcome = { ok: true; json: string } | { ok: false; message: string };

export type CallStep =
  | { step: "replay"; outcome: JournalOutcome }
  /** seq: the record held for the call in its run's journal (replay step), for its outcome. */
  | { step: "run"; approvalId: string | null; seq?: number }
  | { step: "pause"; approvalId: string; created: boolean; expiresAt: number }
  | { step: "rejected"; approvalId: string; decidedBy: string; reason: string }
  | { step: "stopped" };

/** How a journaled run that paused ended: waiting on an approval of one call, or stopped by its rejection. */
export type RunPause = {
  state: "paused" | "rejected";
  approvalId: string;
  created: boolean;
  expiresAt: number;
  decidedBy: string | null;
  reason: string | null;
  call: ApprovalCall;
};

const JOURNAL_KEEP_MS = 7 * 24 * 3_600_000;

type JournaledRun = {
  run_id: string;
  thread: string;
  /** The paused run of the same task whose journal this run replays from. */
  source_run: string | null;
  state: "running" | "paused" | "rejected" | "done";
  approval_id: string | null;
  created: number;
  superseded: number;
  started_at: number;
  at: number;
};

/** What a held record says until the call's outcome arrives: it left, and nobody knows what came of it. */
function unknownOutcome(ask: { connector: string; operation: string }): JournalOutcome {
  return {
    ok: false,
    message: `[upstream_failed] ${ask.connector}.${ask.operation} was sent, but its outcome was not recorded (the run was cut off); it is not repeated`,
  };
}

export type GateAnswer =
  | { outcome: "approved"; id: string; decidedBy: string; reason: string }
  | { outcome: "pending"; id: string; expiresAt: number; created: boolean }
  | { outcome: "rejected"; id: string; decidedBy: string; reason: string };

export type ApprovalView = {
  id: string;
  state: ApprovalState;
  tenant: string;
  requester: string;
  session: string;
  runId: string;
  contract: { id: string; version: string; class: string };
  codeSha256: string;
  inputSha256: string;
  policyHash: string;
  dataClass: string;
  plan: string[] | null;
  code: string;
  inputJson: string;
  createdAt: string;
  expiresAt: string;
  decidedBy: string | null;
  decidedAt: string | null;
  reason: string | null;
  usedByRun: string | null;
  /** The one operation call this request is for; null when it is for a whole run. */
  call: ApprovalCall | null;
};

export type DecideResult =
  | { ok: true; approval: ApprovalView; team: string | null }
  | { ok: false; code: "not_found" | "four_eyes" | "not_approver" | "not_pending"; message: string };

type Row = {
  id: string;
  key: string;
  state: ApprovalState;
  tenant: string;
  requester: string;
  session: string;
  run_id: string;
  contract: string;
  code_sha256: string;
  input_sha256: string;
  policy_hash: string;
  data_class: string;
  team: string | null;
  plan: string | null;
  code: string;
  input_json: string;
  created_at: number;
  expires_at: number;
  decided_by: string | null;
  decided_at: number | null;
  reason: string | null;
  used_by_run: string | null;
  call_json: string | null;
};

export class ApprovalDesk extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS approvals (
        id TEXT PRIMARY KEY,
        key TEXT NOT NULL,
        state TEXT NOT NULL,
        tenant TEXT NOT NULL,
        requester TEXT NOT NULL,
        session TEXT NOT NULL,
        run_id TEXT NOT NULL,
        contract TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        input_sha256 TEXT NOT NULL,
        policy_hash TEXT NOT NULL,
        data_class TEXT NOT NULL,
        team TEXT,
        plan TEXT,
        code TEXT NOT NULL,
        input_json TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        decided_by TEXT,
        decided_at INTEGER,
        reason TEXT,
        used_by_run TEXT
      );
      CREATE INDEX IF NOT EXISTS approvals_by_key ON approvals (key, created_at);
      CREATE TABLE IF NOT EXISTS url_elicitation_clients (session TEXT PRIMARY KEY, declared_at INTEGER NOT NULL);
      CREATE INDEX IF NOT EXISTS approvals_by_state ON approvals (state, created_at);
      -- tables of an earlier shape of the journal (never deployed: only local state held them)
      DROP TABLE IF EXISTS call_journal;
      DROP TABLE IF EXISTS call_replays;
      DROP TABLE IF EXISTS run_pauses;
      CREATE TABLE IF NOT EXISTS call_records (
        run_id TEXT NOT NULL,
        seq INTEGER NOT NULL,
        connector TEXT NOT NULL,
        operation TEXT NOT NULL,
        args_sha256 TEXT NOT NULL,
        outcome_json TEXT NOT NULL,
        replay_of INTEGER,
        at INTEGER NOT NULL,
        PRIMARY KEY (run_id, seq)
      );
      CREATE INDEX IF NOT EXISTS call_records_by_at ON call_records (at);
      CREATE TABLE IF NOT EXISTS journaled_runs (
        run_id TEXT PRIMARY KEY,
        thread TEXT NOT NULL,
        source_run TEXT,
        state TEXT NOT NULL,
        approval_id TEXT,
        created INTEGER NOT NULL DEFAULT 0,
        superseded INTEGER NOT NULL DEFAULT 0,
        started_at INTEGER NOT NULL,
        at INTEGER NOT NULL
      );
      CREATE INDEX IF NOT EXISTS journaled_runs_by_thread ON journaled_runs (thread, state, superseded, at);
      CREATE INDEX IF NOT EXISTS journaled_runs_by_at ON journaled_runs (at);
    `);
    // requests for one operation call of a run (null: a run's approval); added after the table existed
    try {
      ctx.storage.sql.exec("ALTER TABLE approvals ADD COLUMN call_json TEXT");
    } catch {
      // the column is there already
    }
  }

  /**
   * One connector operation call of a run that keeps a journal (see CallAsk), decided in
   * synchronous steps, so two runs cannot spend one approval or replay one record twice.
   *
   * Each run keeps its own journal: every call it made or was replayed, with its outcome. A
   * run's first call binds it to its source: the task's latest run that paused (or was
   * stopped by a rejection) and has not been superseded. A call the source's journal has
   * (same connector, operation and argument digest, not yet replayed to this run) returns
   * the recorded outcome and is copied into this run's journal; a run that has paused or
   * ended calls nothing more; a call that needs no approval runs; one that does runs on an
   * approved, unused approval of exactly this call (spent here), and otherwise pauses the
   * run: on a pending request, a new one, or a rejection.
   */
  async callStep(ask: CallAsk): Promise<CallStep> {
    const now = Date.now();
    await this.expire(now);
    const sql = this.ctx.storage.sql;
    if (ask.phase !== "replay" && ask.phase !== "approve") return { step: "stopped" };
    // a run's calls may arrive at once: the first to get here binds it to its source, the others find that row
    const source = sql
      .exec<{ run_id: string }>(
        "SELECT run_id FROM journaled_runs WHERE thread = ? AND state IN ('paused', 'rejected') AND superseded = 0 AND run_id != ? ORDER BY at DESC LIMIT 1",
        ask.thread,
        ask.runId,
      )
      .toArray()[0];
    sql.exec(
      "INSERT OR IGNORE INTO journaled_runs (run_id, thread, source_run, state, started_at, at) VALUES (?, ?, ?, 'running', ?, ?)",
      ask.runId,
      ask.thread,
      source?.run_id ?? null,
      now,
      now,
    );
    const run = sql.exec<JournaledRun>("SELECT * FROM journaled_runs WHERE run_id = ?", ask.runId).one();
    if (run.thread !== ask.thread || run.state === "done") return { step: "stopped" };
    // a replay sends nothing, so a call of a run that has just paused may still take its record (its retry needs it)
    if (ask.phase === "replay" && run.source_run) {
      const recorded = sql
        .exec<{ seq: number; outcome_json: string }>(
          `SELECT seq, outcome_json FROM call_records
           WHERE run_id = ? AND connector = ? AND operation = ? AND args_sha256 = ?
             AND seq NOT IN (SELECT replay_of FROM call_records WHERE run_id = ? AND replay_of IS NOT NULL)
           ORDER BY seq LIMIT 1`,
          run.source_run,
          ask.connector,
          ask.operation,
          ask.argsSha256,
          ask.runId,
        )
        .toArray()[0];
      if (recorded) {
        // the replay is part of this run's history too: its own retry replays it from here
        this.append(ask.runId, ask.connector, ask.operation, ask.argsSha256, recorded.outcome_json, now, recorded.seq);
        return { step: "replay", outcome: JSON.parse(recorded.outcome_json) as JournalOutcome };
      }
    }
    if (run.state !== "running") return { step: "stopped" };
    if (ask.phase === "replay") {
      // held before it leaves: if its outcome never arrives (a lost write, a run cut off), a retry says so rather than repeat it
      const seq = this.append(ask.runId, ask.connector, ask.operation, ask.argsSha256, JSON.stringify(unknownOutcome(ask)), now);
      return { step: "run", approvalId: null, seq };
    }
    if (!ask.needsApproval) return { step: "run", approvalId: null };
    const latest = this.latestFor(ask.key);
    if (latest?.state === "approved") {
      this.spend(latest.id, ask.runId);
      return { step: "run", approvalId: latest.id };
    }
    const pause = (id: string, state: "paused" | "rejected", created: boolean) =>
      sql.exec("UPDATE journaled_runs SET state = ?, approval_id = ?, created = ?, at = ? WHERE run_id = ?", state, id, created ? 1 : 0, now, ask.runId);
    if (latest?.state === "pending") {
      pause(latest.id, "paused", false);
      return { step: "pause", approvalId: latest.id, created: false, expiresAt: latest.expires_at };
    }
    if (latest?.state === "rejected") {
      pause(latest.id, "rejected", false);
      return { step: "rejected", approvalId: latest.id, decidedBy: latest.decided_by ?? "?", reason: latest.reason ?? "" };
    }
    const call: ApprovalCall = { connector: ask.connector, operation: ask.operation, argsSha256: ask.argsSha256, argsJson: ask.argsJson };
    const { id, expiresAt } = this.openRequest({ ...ask, plan: null, code: "", inputJson: "null" }, now, call);
    pause(id, "paused", true);
    await this.armExpiry();
    return { step: "pause", approvalId: id, created: true, expiresAt };
  }

  /**
   * What a call of a journaled run did, in the record its replay step held for it: its outcome
   * (once it left, whatever came back), or nothing when it never left (refused before it was
   * sent: a retry runs it, rather than replay the refusal). A run that ended without pausing
   * is nobody's source: its records are gone.
   */
  async journalCall(entry: { runId: string; seq: number; outcome: JournalOutcome | null }): Promise<void> {
    const sql = this.ctx.storage.sql;
    if (entry.outcome === null) sql.exec("DELETE FROM call_records WHERE run_id = ? AND seq = ?", entry.runId, entry.seq);
    else sql.exec("UPDATE call_records SET outcome_json = ? WHERE run_id = ? AND seq = ?", JSON.stringify(entry.outcome), entry.runId, entry.seq);
  }

  /** The latest request for exactly this task or call. */
  private latestFor(key: string): Row | undefined {
    return this.ctx.storage.sql.exec<Row>("SELECT * FROM approvals WHERE key = ? ORDER BY created_at DESC, rowid DESC LIMIT 1", key).toArray()[0];
  }

  /** An approved request spent by the run (a run's approval by the run, a call's by the call). */
  private spend(id: string, runId: string): void {
    this.ctx.storage.sql.exec("UPDATE approvals SET state = 'used', used_by_run = ? WHERE id = ?", runId, id);
  }

  /** A new pending request: for a run (call null) or for one operation call of a run. */
  private openRequest(ask: ApprovalAsk, now: number, call: ApprovalCall | null): { id: string; expiresAt: number } {
    const id = `apr_${crypto.randomUUID()}`;
    const expiresAt = now + ask.ttlMs;
    this.ctx.storage.sql.exec(
      `INSERT INTO approvals (id, key, state, tenant, requester, session, run_id, contract, code_sha256, input_sha256, policy_hash, data_class, team, plan, code, input_json, created_at, expires_at, call_json)
       VALUES (?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      id,
      ask.key,
      ask.tenant,
      ask.requester,
      ask.session,
      ask.runId,
      JSON.stringify(ask.contract),
      ask.codeSha256,
      ask.inputSha256,
      ask.policyHash,
      ask.dataClass,
      ask.team,
      ask.plan ? JSON.stringify(ask.plan) : null,
      ask.code,
      ask.inputJson,
      now,
      expiresAt,
      call ? JSON.stringify(call) : null,
    );
    return { id, expiresAt };
  }

  private append(
    runId: string,
    connector: string,
    operation: string,
    argsSha256: string,
    outcomeJson: string,
    at: number,
    replayOf: number | null = null,
  ): number {
    const sql = this.ctx.storage.sql;
    const next = (sql.exec<{ seq: number | null }>("SELECT MAX(seq) AS seq FROM call_records WHERE run_id = ?", runId).one().seq ?? 0) + 1;
    sql.exec(
      "INSERT INTO call_records (run_id, seq, connector, operation, args_sha256, outcome_json, replay_of, at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      runId,
      next,
      connector,
      operation,
      argsSha256,
      outcomeJson,
      replayOf,
      at,
    );
    return next;
  }

  /**
   * A journaled run has ended. Its source is superseded either way (a run that finished
   * resumed it; one that paused again replaces it, with the replayed calls in its own
   * journal). A run that paused (or was stopped by a rejection) is the source of the task's
   * next run; one that ended without pausing leaves no source, so the same task called again
   * later is a new run with new effects, not a replay. Journals are dropped after 7 days.
   */
  async endJournaledRun(thread: string, runId: string): Promise<RunPause | null> {
    const sql = this.ctx.storage.sql;
    const now = Date.now();
    sql.exec("DELETE FROM call_records WHERE at < ?", now - JOURNAL_KEEP_MS);
    sql.exec("DELETE FROM journaled_runs WHERE at < ?", now - JOURNAL_KEEP_MS);
    const run = sql.exec<JournaledRun>("SELECT * FROM journaled_runs WHERE run_id = ? AND thread = ?", runId, thread).toArray()[0];
    if (!run) {
      // no call reached the desk: the run is over all the same, and a late call must find it so
      sql.exec("INSERT OR IGNORE INTO journaled_runs (run_id, thread, state, started_at, at) VALUES (?, ?, 'done', ?, ?)", runId, thread, now, now);
      return null;
    }
    // its source is resumed (or replaced), and any older paused run of the task is stale: nobody resumes it later
    sql.exec(
      "UPDATE journaled_runs SET superseded = 1 WHERE thread = ? AND run_id != ? AND state IN ('paused', 'rejected') AND (run_id = ? OR at < ?)",
      thread,
      runId,
      run.source_run ?? "",
      run.started_at,
    );
    if (run.state === "running") {
      sql.exec("UPDATE journaled_runs SET state = 'done', at = ? WHERE run_id = ?", now, runId);
      sql.exec("DELETE FROM call_records WHERE run_id = ?", runId);
      return null;
    }
    // paused: the source's records this run did not reach are carried over, so the chain loses none
    if (run.source_run) {
      const left = sql
        .exec<{ seq: number; connector: string; operation: string; args_sha256: string; outcome_json: string }>(
          `SELECT seq, connector, operation, args_sha256, outcome_json FROM call_records
           WHERE run_id = ? AND seq NOT IN (SELECT replay_of FROM call_records WHERE run_id = ? AND replay_of IS NOT NULL) ORDER BY seq`,
          run.source_run,
          runId,
        )
        .toArray();
      for (const record of left) this.append(runId, record.connector, record.operation, record.args_sha256, record.outcome_json, now, record.seq);
    }
    const row = run.approval_id ? sql.exec<Row>("SELECT * FROM approvals WHERE id = ?", run.approval_id).toArray()[0] : undefined;
    if (!row?.call_json) return null;
    return {
      state: run.state === "rejected" ? "rejected" : "paused",
      approvalId: row.id,
      created: run.created === 1,
      expiresAt: row.expires_at,
      decidedBy: row.decided_by,
      reason: row.reason,
      call: JSON.parse(row.call_json) as ApprovalCall,
    };
  }

  /**
   * The gate: an approved, unexpired, unused request for exactly this task is spent by this
   * run; a pending one is reported; a rejected one is final for that request; otherwise (none,
   * used, expired) a new request is opened. Synchronous, so two runs cannot spend one approval.
   */
  async gate(ask: ApprovalAsk): Promise<GateAnswer> {
    const now = Date.now();
    await this.expire(now);
    const latest = this.latestFor(ask.key);
    if (latest?.state === "approved") {
      this.spend(latest.id, ask.runId);
      return { outcome: "approved", id: latest.id, decidedBy: latest.decided_by ?? "?", reason: latest.reason ?? "" };
    }
    if (latest?.state === "pending") return { outcome: "pending", id: latest.id, expiresAt: latest.expires_at, created: false };
    if (latest?.state === "rejected") return { outcome: "rejected", id: latest.id, decidedBy: latest.decided_by ?? "?", reason: latest.reason ?? "" };
    const { id, expiresAt } = this.openRequest(ask, now, null);
    await this.armExpiry();
    return { outcome: "pending", id, expiresAt, created: true };
  }

  /** An approver's verdict on a pending request; recorded in the requester's session ledger. */
  async decide(id: string, approver: { actor: string; roles: string[] }, verdict: "approved" | "rejected", reason: string): Promise<DecideResult> {
    const now = Date.now();
    await this.expire(now);
    const sql = this.ctx.storage.sql;
    const row = sql.exec<Row>("SELECT * FROM approvals WHERE id = ?", id).toArray()[0];
    if (!row) return { ok: false, code: "not_found", message: "No such approval request in this tenant." };
    if (!approver.roles.includes(APPROVER_ROLE)) return { ok: false, code: "not_approver", message: `Deciding needs the ${APPROVER_ROLE} role.` };
    if (approver.actor === row.requester) return { ok: false, code: "four_eyes", message: "The requester cannot decide their own request (four eyes)." };
    if (row.state !== "pending") return { ok: false, code: "not_pending", message: `The request is ${row.state}, not pending.` };
    sql.exec("UPDATE approvals SET state = ?, decided_by = ?, decided_at = ?, reason = ? WHERE id = ?", verdict, approver.actor, now, reason, id);
    const contract = JSON.parse(row.contract) as ApprovalView["contract"];
    // the decision is evidence in the requester's session, beside the run that asked
    await ledgerFor(this.env.SESSION_LEDGER, row.tenant, row.session).append({
      kind: "approval.decided",
      runId: row.run_id,
      tenant: row.tenant,
      actor: approver.actor,
      session: row.session,
      contract,
      policyHash: row.policy_hash,
      decision: null,
      approval: { id, verdict, reason, requester: row.requester, expiresAt: row.expires_at },
    });
    return { ok: true, team: row.team, approval: view({ ...row, state: verdict, decided_by: approver.actor, decided_at: now, reason }) };
  }

  /** Gives an approval back to its task when the run that spent it did not start (no budget slot, no evidence). */
  async restore(id: string, runId: string): Promise<boolean> {
    const sql = this.ctx.storage.sql;
    const before = sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM approvals WHERE id = ? AND state = 'used' AND used_by_run = ?", id, runId).one().n;
    sql.exec("UPDATE approvals SET state = 'approved', used_by_run = NULL WHERE id = ? AND state = 'used' AND used_by_run = ?", id, runId);
    await this.expire(Date.now());
    return before > 0;
  }

  /**
   * What a 2025-era client declared at initialize, remembered per authenticated session: the
   * endpoint is stateless, so the tools/call that needs it arrives as another request.
   */
  async rememberClient(session: string, urlElicitation: boolean): Promise<void> {
    const sql = this.ctx.storage.sql;
    if (urlElicitation) sql.exec("INSERT OR REPLACE INTO url_elicitation_clients (session, declared_at) VALUES (?, ?)", session, Date.now());
    else sql.exec("DELETE FROM url_elicitation_clients WHERE session = ?", session);
  }

  async declaredUrlElicitation(session: string): Promise<boolean> {
    return this.ctx.storage.sql.exec("SELECT 1 FROM url_elicitation_clients WHERE session = ?", session).toArray().length > 0;
  }

  async get(id: string): Promise<ApprovalView | null> {
    await this.expire(Date.now());
    const row = this.ctx.storage.sql.exec<Row>("SELECT * FROM approvals WHERE id = ?", id).toArray()[0];
    return row ? view(row) : null;
  }

  /** The tenant's requests in one state (pending by default), newest first, without code and input bodies. */
  async list(state: ApprovalState, limit: number): Promise<Array<Omit<ApprovalView, "code" | "inputJson">>> {
    await this.expire(Date.now());
    return this.ctx.storage.sql
      .exec<Row>("SELECT * FROM approvals WHERE state = ? ORDER BY created_at DESC LIMIT ?", state, limit)
      .toArray()
      .map((row) => {
        const { code: _code, inputJson: _input, ...summary } = view(row);
        return summary;
      });
  }

  /** Pending and approved-but-unused requests past their expiry become expired; each expiry is evidence in its session. */
  private async expire(now: number): Promise<void> {
    const sql = this.ctx.storage.sql;
    const due = sql.exec<Row>("SELECT * FROM approvals WHERE state IN ('pending', 'approved') AND expires_at <= ?", now).toArray();
    if (due.length === 0) return;
    sql.exec("UPDATE approvals SET state = 'expired' WHERE state IN ('pending', 'approved') AND expires_at <= ?", now);
    for (const row of due) {
      await ledgerFor(this.env.SESSION_LEDGER, row.tenant, row.session).append({
        kind: "approval.decided",
        runId: row.run_id,
        tenant: row.tenant,
        actor: "platform",
        session: row.session,
        contract: JSON.parse(row.contract) as ApprovalView["contract"],
        policyHash: row.policy_hash,
        decision: null,
        approval: {
          id: row.id,
          verdict: "expired",
          reason: row.state === "approved" ? `approved by ${row.decided_by ?? "?"} but not used before it expired` : "not decided before it expired",
          requester: row.requester,
          expiresAt: row.expires_at,
        },
      });
    }
  }

  /** The alarm fires at the next expiry, so an expiry is recorded even if nobody asks again. */
  override async alarm(): Promise<void> {
    await this.expire(Date.now());
    await this.armExpiry();
  }

  private async armExpiry(): Promise<void> {
    const next = this.ctx.storage.sql
      .exec<{ at: number | null }>("SELECT MIN(expires_at) AS at FROM approvals WHERE state IN ('pending', 'approved')")
      .one().at;
    if (next === null) return;
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > next) await this.ctx.storage.setAlarm(next);
  }
}

function view(row: Row): ApprovalView {
  return {
    id: row.id,
    state: row.state,
    tenant: row.tenant,
    requester: row.requester,
    session: row.session,
    runId: row.run_id,
    contract: JSON.parse(row.contract) as ApprovalView["contract"],
    codeSha256: row.code_sha256,
    inputSha256: row.input_sha256,
    policyHash: row.policy_hash,
    dataClass: row.data_class,
    plan: row.plan ? (JSON.parse(row.plan) as string[]) : null,
    code: row.code,
    inputJson: row.input_json,
    createdAt: new Date(row.created_at).toISOString(),
    expiresAt: new Date(row.expires_at).toISOString(),
    decidedBy: row.decided_by,
    decidedAt: row.decided_at === null ? null : new Date(row.decided_at).toISOString(),
    reason: row.reason,
    usedByRun: row.used_by_run,
    call: row.call_json ? (JSON.parse(row.call_json) as ApprovalCall) : null,
  };
}
