// Keeps every policy snapshot that a run ever pointed at, forever, one Durable
// Object per hash: GET /v1/policy/{hash} answers from here long after the policy
// files changed. A snapshot is stored only if its text hashes to its name.
import { DurableObject } from "cloudflare:workers";
import { sha256Hex } from "../evidence/index.ts";

export type ArchivedSnapshot = { tenant: string; canonical: string; storedAt: string };

export class PolicyArchive extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS snapshot (
        hash TEXT PRIMARY KEY,
        tenant TEXT NOT NULL,
        canonical TEXT NOT NULL,
        stored_at TEXT NOT NULL
      );
    `);
  }

  /** Stores the snapshot if it is new; refuses text that does not hash to `hash`. Idempotent. */
  async keep(hash: string, tenant: string, canonical: string): Promise<{ ok: true } | { ok: false; reason: "hash_mismatch" }> {
    if ((await sha256Hex(canonical)) !== hash) return { ok: false, reason: "hash_mismatch" };
    this.ctx.storage.sql.exec(
      "INSERT OR IGNORE INTO snapshot (hash, tenant, canonical, stored_at) VALUES (?, ?, ?, ?)",
      hash,
      tenant,
      canonical,
      new Date().toISOString(),
    );
    return { ok: true };
  }

  async get(hash: string): Promise<ArchivedSnapshot | null> {
    const row = this.ctx.storage.sql
      .exec<{ tenant: string; canonical: string; stored_at: string }>("SELECT tenant, canonical, stored_at FROM snapshot WHERE hash = ?", hash)
      .toArray()[0];
    return row ? { tenant: row.tenant, canonical: row.canonical, storedAt: row.stored_at } : null;
  }
}
