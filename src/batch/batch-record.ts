// One batch: its tasks as submitted (the queue messages carry only a reference, since code
// and input may be far above a message's size limit), who submitted it, and per task its
// state (queued -> running -> done) and outcome. A task is claimed once: a message the
// queue delivers again (its consumer died mid-run) does not run the task a second time.
import { DurableObject } from "cloudflare:workers";

export type BatchOwner = { tenant: string; actor: string; session: string; roles: string[] };
// Task bodies and outcomes cross the RPC boundary as JSON text: arbitrary values (`unknown`)
// do not map onto RPC's serialisable types.
export type TaskState = "queued" | "running" | "done";

export type BatchTaskView = {
  index: number;
  state: TaskState;
  /** Budget refusals while queued; each sent the message back to the queue with a delay. */
  deferrals: number;
  runId: string | null;
  /** The run's envelope (termination, result or error, budget) once done. */
  /** The run's envelope as JSON text, once done. */
  outcomeJson: string | null;
};

export type BatchView = {
  batchId: string;
  owner: BatchOwner;
  createdAt: string;
  counts: Record<TaskState, number>;
  terminations: Record<string, number>;
  tasks: BatchTaskView[];
  nextCursor: number | null;
};

export class BatchRecord extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS batch (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        batch_id TEXT NOT NULL,
        owner TEXT NOT NULL,
        created_at TEXT NOT NULL,
        created_ms INTEGER NOT NULL
      );
      CREATE TABLE IF NOT EXISTS tasks (
        idx INTEGER PRIMARY KEY,
        body TEXT NOT NULL,
        state TEXT NOT NULL,
        deferrals INTEGER NOT NULL DEFAULT 0,
        run_id TEXT,
        termination TEXT,
        outcome TEXT
      );
    `);
  }

  /** Stores the batch and its tasks; refuses a second create (ids are random, so that is a bug or an attack). */
  async create(batchId: string, owner: BatchOwner, tasksJson: string[]): Promise<{ ok: boolean }> {
    const sql = this.ctx.storage.sql;
    if (sql.exec("SELECT 1 FROM batch").toArray().length > 0) return { ok: false };
    const now = Date.now();
    this.ctx.storage.transactionSync(() => {
      sql.exec(
        "INSERT INTO batch (id, batch_id, owner, created_at, created_ms) VALUES (1, ?, ?, ?, ?)",
        batchId,
        JSON.stringify(owner),
        new Date(now).toISOString(),
        now,
      );
      for (const [index, task] of tasksJson.entries()) sql.exec("INSERT INTO tasks (idx, body, state) VALUES (?, ?, 'queued')", index, task);
    });
    return { ok: true };
  }

  /** The task to run, if it is still queued; marks it running under `runId`. */
  async claim(
    index: number,
    runId: string,
  ): Promise<{ ok: true; taskJson: string; owner: BatchOwner; queuedSinceMs: number } | { ok: false; state: TaskState | "missing" }> {
    const sql = this.ctx.storage.sql;
    const row = sql.exec<{ body: string; state: TaskState }>("SELECT body, state FROM tasks WHERE idx = ?", index).toArray()[0];
    const batch = sql.exec<{ owner: string; created_ms: number }>("SELECT owner, created_ms FROM batch").toArray()[0];
    if (!row || !batch) return { ok: false, state: "missing" };
    if (row.state !== "queued") return { ok: false, state: row.state };
    sql.exec("UPDATE tasks SET state = 'running', run_id = ? WHERE idx = ?", runId, index);
    return { ok: true, taskJson: row.body, owner: JSON.parse(batch.owner) as BatchOwner, queuedSinceMs: batch.created_ms };
  }

  /** The task goes back to queued: the budget had no slot (its message returns to the queue with a delay). */
  async defer(index: number): Promise<void> {
    this.ctx.storage.sql.exec("UPDATE tasks SET state = 'queued', run_id = NULL, deferrals = deferrals + 1 WHERE idx = ? AND state = 'running'", index);
  }

  async complete(index: number, runId: string, termination: string, outcomeJson: string): Promise<void> {
    this.ctx.storage.sql.exec(
      "UPDATE tasks SET state = 'done', run_id = ?, termination = ?, outcome = ? WHERE idx = ?",
      runId,
      termination,
      outcomeJson,
      index,
    );
  }

  async view(cursor: number, limit: number): Promise<BatchView | null> {
    const sql = this.ctx.storage.sql;
    const batch = sql.exec<{ batch_id: string; owner: string; created_at: string }>("SELECT batch_id, owner, created_at FROM batch").toArray()[0];
    if (!batch) return null;
    const counts: Record<TaskState, number> = { queued: 0, running: 0, done: 0 };
    for (const row of sql.exec<{ state: TaskState; n: number }>("SELECT state, COUNT(*) AS n FROM tasks GROUP BY state")) counts[row.state] = row.n;
    const terminations: Record<string, number> = {};
    for (const row of sql.exec<{ termination: string; n: number }>(
      "SELECT termination, COUNT(*) AS n FROM tasks WHERE termination IS NOT NULL GROUP BY termination",
    )) {
      terminations[row.termination] = row.n;
    }
    const rows = sql
      .exec<{ idx: number; state: TaskState; deferrals: number; run_id: string | null; outcome: string | null }>(
        "SELECT idx, state, deferrals, run_id, outcome FROM tasks WHERE idx >= ? ORDER BY idx LIMIT ?",
        cursor,
        limit + 1,
      )
      .toArray();
    const tasks = rows.slice(0, limit).map((row) => ({
      index: row.idx,
      state: row.state,
      deferrals: row.deferrals,
      runId: row.run_id,
      outcomeJson: row.outcome,
    }));
    return {
      batchId: batch.batch_id,
      owner: JSON.parse(batch.owner) as BatchOwner,
      createdAt: batch.created_at,
      counts,
      terminations,
      tasks,
      nextCursor: rows.length > limit ? cursor + limit : null,
    };
  }
}
