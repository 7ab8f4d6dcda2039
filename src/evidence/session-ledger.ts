// The per-session evidence ledger: a SQLite-backed Durable Object, one per
// (tenant, session). Append-only; records come back oldest first, by page.
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { type EvidenceEntry, EvidenceEntrySchema, type EvidenceRecord } from "./evidence-record.ts";

export const PAGE_LIMIT_MAX = 500;

const PageRequestSchema = z.object({ after: z.int().min(0), limit: z.int().min(1).max(PAGE_LIMIT_MAX) });

export type EvidencePage = { records: EvidenceRecord[]; nextCursor: number | null };

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
    `);
  }

  /** Appends one record; refuses one that belongs to another tenant or session. */
  append(entry: EvidenceEntry): { seq: number; at: string } {
    const parsed = EvidenceEntrySchema.parse(entry);
    const sql = this.ctx.storage.sql;
    const at = new Date().toISOString();
    const owner = sql.exec<{ tenant: string; session: string }>("SELECT tenant, session FROM ledger WHERE id = 1").toArray()[0];
    if (!owner) {
      sql.exec("INSERT INTO ledger (id, tenant, session, created_at) VALUES (1, ?, ?, ?)", parsed.tenant, parsed.session, at);
    } else if (owner.tenant !== parsed.tenant || owner.session !== parsed.session) {
      throw new Error("evidence entry belongs to another ledger");
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
    return { seq, at };
  }

  /** Records with seq > after, oldest first. */
  page(after: number, limit: number): EvidencePage {
    const request = PageRequestSchema.parse({ after, limit });
    const rows = this.ctx.storage.sql
      .exec<{ seq: number; at: string; body: string }>("SELECT seq, at, body FROM records WHERE seq > ? ORDER BY seq LIMIT ?", request.after, request.limit + 1)
      .toArray();
    const more = rows.length > request.limit;
    const records = rows.slice(0, request.limit).map((row) => ({ ...(JSON.parse(row.body) as EvidenceEntry), seq: row.seq, at: row.at }));
    return { records, nextCursor: more ? (records.at(-1)?.seq ?? null) : null };
  }

  /** How many records the ledger holds (0 for a session never seen). */
  count(): number {
    return this.ctx.storage.sql.exec<{ n: number }>("SELECT COUNT(*) AS n FROM records").one().n;
  }
}
