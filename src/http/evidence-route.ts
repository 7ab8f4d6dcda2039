// GET /v1/sessions/{sid}/evidence: a session's records, oldest first, by page.
// Visible to the session's own tenant only; everyone else gets 404, whether or not
// the session exists.
import { z } from "zod";
import { PlatformError } from "../errors/index.ts";
import { ledgerFor, PAGE_LIMIT_MAX, readLedger, type SessionLedger } from "../evidence/index.ts";
import { IdentifierSchema, type Identity } from "../identity/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const AUDITOR_ROLE = "auditor";

const QuerySchema = z.object({
  cursor: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(PAGE_LIMIT_MAX).default(100),
});

/** Who may read a session: its own session token, or an auditor of the same tenant. */
export function mayReadSession(identity: Identity, session: string): boolean {
  return identity.session === session || identity.roles.includes(AUDITOR_ROLE);
}

export async function serveEvidence(
  request: Request,
  rawSession: string,
  identity: Identity,
  ledgers: DurableObjectNamespace<SessionLedger>,
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "Evidence is read with GET."), { allow: "GET, HEAD" });
  }
  const session = readableSession(rawSession, identity);
  if (session === null) return noEvidence();

  const url = new URL(request.url);
  const query = QuerySchema.safeParse(Object.fromEntries(url.searchParams));
  if (!query.success) {
    const issue = query.error.issues[0];
    return errorResponse(
      new PlatformError("bad_request", `Query parameter ${String(issue?.path[0])} is invalid: ${issue?.message}.`, {
        hint: `Use ?cursor=<nextCursor from the previous page>&limit=<1..${PAGE_LIMIT_MAX}>.`,
      }),
    );
  }
  const ledger = ledgerFor(ledgers, identity.tenant, session);
  const result = await readLedger(session, async () => await ledger.page(query.data.cursor, query.data.limit));
  if (!result.ok) return errorResponse(new PlatformError("bad_request", result.detail));
  const { page } = result;
  if (page.records.length === 0 && query.data.cursor === 0) return noEvidence();
  return jsonResponse({ tenant: identity.tenant, session, records: page.records, nextCursor: page.nextCursor });
}

/** The session named by a path segment, if this identity may read it; null otherwise (answer 404 either way). */
export function readableSession(rawSession: string, identity: Identity): string | null {
  const session = IdentifierSchema.safeParse(safeDecode(rawSession));
  return session.success && mayReadSession(identity, session.data) ? session.data : null;
}

export function noEvidence(): Response {
  return errorResponse(new PlatformError("not_found", "No evidence for this session."));
}

export function safeDecode(segment: string): string | undefined {
  try {
    return decodeURIComponent(segment);
  } catch {
    return undefined;
  }
}
