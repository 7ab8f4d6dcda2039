// POST /__local/reconcile: how the local supervisor (src/local/supervisor.ts) closes the
// runs a restarted or crashed runtime lost, in the sessions it had calls in flight for.
// Exists only when LOCAL_SUPERVISOR_TOKEN is set (npm start sets a fresh one each time),
// and answers only a request carrying that token.
import { z } from "zod";
import { PlatformError } from "../errors/index.ts";
import { ledgerFor, type SessionLedger } from "../evidence/index.ts";
import { IdentifierSchema } from "../identity/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const RECONCILE_ROUTE = "/__local/reconcile";
export const SUPERVISOR_HEADER = "x-local-supervisor";
/** How long the supervisor held a call in its line before forwarding it (sent with SUPERVISOR_HEADER). */
export const HELD_HEADER = "x-local-supervisor-held-ms";
/** Every response of the Worker carries it; the supervisor tells a lost runtime apart by its absence. */
export const RESPONSE_MARKER = "x-agent-exec";

const BodySchema = z.object({
  sessions: z.array(z.object({ tenant: IdentifierSchema, session: IdentifierSchema })).max(1_000),
  before: z.int().min(0),
  cause: z.enum(["watchdog", "crash", "out_of_memory"]),
});

export async function serveReconcile(request: Request, token: string, ledgers: DurableObjectNamespace<SessionLedger>): Promise<Response> {
  const presented = request.headers.get(SUPERVISOR_HEADER) ?? "";
  if (request.method !== "POST" || !(await sameSecret(presented, token)))
    return errorResponse(new PlatformError("not_found", `No route for ${request.method} ${RECONCILE_ROUTE}.`));
  const body = BodySchema.safeParse(await request.json().catch(() => null));
  if (!body.success) return errorResponse(new PlatformError("bad_request", "Send {sessions: [{tenant, session}], before, cause}."));
  const closed = [];
  for (const { tenant, session } of body.data.sessions) {
    for (const run of await ledgerFor(ledgers, tenant, session).reconcile(body.data.before, body.data.cause)) closed.push({ tenant, session, ...run });
  }
  return jsonResponse({ closed });
}

/**
 * How long the local supervisor held this call before forwarding it: 0 unless the request
 * carries the supervisor's own token (anyone else could claim a wait and shorten its own).
 */
export async function heldBySupervisor(request: Request, token: string | null): Promise<number> {
  const held = request.headers.get(HELD_HEADER);
  if (!token || held === null) return 0;
  const ms = Number(held);
  if (!Number.isInteger(ms) || ms <= 0 || ms > 3_600_000) return 0;
  return (await sameSecret(request.headers.get(SUPERVISOR_HEADER) ?? "", token)) ? ms : 0;
}

/** Compares two secrets without leaking where they differ. */
async function sameSecret(a: string, b: string): Promise<boolean> {
  const digest = async (text: string) => new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text)));
  const [x, y] = await Promise.all([digest(a), digest(b)]);
  return b.length > 0 && x.every((byte, i) => byte === y[i]);
}
