// The documents, logs and metrics a tenant's read-only capability reads: one SQLite
// Durable Object per tenant, so no query can reach another tenant's data. Loaded
// through POST /v1/store/items (npm run seed locally); read through the docs binding.
import { DurableObject } from "cloudflare:workers";
import { z } from "zod";
import { type StoredItem, type StoreItem, StoreItemSchema } from "./store-item.ts";

const LIMIT_MAX = 200;

export class TenantStore extends DurableObject<Env> {
  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    ctx.storage.sql.exec(`
      CREATE TABLE IF NOT EXISTS items (
        kind TEXT NOT NULL,
        key TEXT NOT NULL,
        ts INTEGER NOT NULL,
        body TEXT NOT NULL,
        PRIMARY KEY (kind, key)
      );
      CREATE INDEX IF NOT EXISTS items_by_ts ON items (kind, ts);
    `);
  }

  async putItems(items: StoreItem[]): Promise<{ ok: true; stored: number } | { ok: false; detail: string }> {
    const parsed = z.array(StoreItemSchema).max(1_000).safeParse(items);
    if (!parsed.success) return { ok: false, detail: parsed.error.message.slice(0, 500) };
    for (const item of parsed.data) {
      this.ctx.storage.sql.exec(
        "INSERT OR REPLACE INTO items (kind, key, ts, body) VALUES (?, ?, ?, ?)",
        item.kind,
        item.key,
        item.ts ?? Date.now(),
        JSON.stringify(item.body ?? null),
      );
    }
    return { ok: true, stored: parsed.data.length };
  }

  async get(kind: string, key: string): Promise<StoredItem | null> {
    return this.rows("SELECT kind, key, ts, body FROM items WHERE kind = ? AND key = ?", kind, key)[0] ?? null;
  }

  /** Items of a kind in key order, after a key, optionally under a key prefix. */
  async list(kind: string, prefix: string, after: string, limit: number): Promise<StoredItem[]> {
    return this.rows(
      "SELECT kind, key, ts, body FROM items WHERE kind = ? AND key > ? AND substr(key, 1, ?) = ? ORDER BY key LIMIT ?",
      kind,
      after,
      prefix.length,
      prefix,
      Math.min(limit, LIMIT_MAX),
    );
  }

  /** Items whose body contains the text (case-insensitive), newest first. */
  async search(text: string, kind: string | null, limit: number): Promise<StoredItem[]> {
    const pattern = `%${text.replace(/[\\%_]/g, (c) => `\\${c}`)}%`;
    return kind
      ? this.rows(
          "SELECT kind, key, ts, body FROM items WHERE kind = ? AND body LIKE ? ESCAPE '\\' ORDER BY ts DESC LIMIT ?",
          kind,
          pattern,
          Math.min(limit, LIMIT_MAX),
        )
      : this.rows("SELECT kind, key, ts, body FROM items WHERE body LIKE ? ESCAPE '\\' ORDER BY ts DESC LIMIT ?", pattern, Math.min(limit, LIMIT_MAX));
  }

  /** Metric points (kind "metric", key "<name>/...") between two times, oldest first. */
  async metric(name: string, from: number, to: number, limit: number): Promise<StoredItem[]> {
    const prefix = `${name}/`;
    return this.rows(
      "SELECT kind, key, ts, body FROM items WHERE kind = 'metric' AND substr(key, 1, ?) = ? AND ts >= ? AND ts <= ? ORDER BY ts LIMIT ?",
      prefix.length,
      prefix,
      from,
      to,
      Math.min(limit, LIMIT_MAX),
    );
  }

  private rows(query: string, ...bindings: unknown[]): StoredItem[] {
    return this.ctx.storage.sql
      .exec<{ kind: string; key: string; ts: number; body: string }>(query, ...bindings)
      .toArray()
      .map((row) => ({ kind: row.kind, key: row.key, ts: row.ts, body: JSON.parse(row.body) as unknown }));
  }
}
