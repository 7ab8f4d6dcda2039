// The one place where platform errors become HTTP responses.
import { asPlatformError, type PlatformError } from "../errors/index.ts";
import { logEvent } from "../log/index.ts";

export const REALM = "agent-exec";

/** Every response of the Worker carries it; the local supervisor tells the Worker's answers from wrangler's own by it. */
export const RESPONSE_MARKER = "x-agent-exec";

export function errorResponse(error: PlatformError, headers: HeadersInit = {}): Response {
  const out = new Headers(headers);
  out.set("content-type", "application/json");
  out.set("cache-control", "no-store");
  if (error.status === 401) out.set("www-authenticate", bearerChallenge(error));
  // RFC 6750 3.1: a token that lacks the role a route needs is told which, as a scope
  if (error.status === 403 && error.scope) out.set("www-authenticate", `Bearer realm="${REALM}", error="insufficient_scope", scope="${error.scope.join(" ")}"`);
  if (error.retryAfterMs !== undefined) out.set("retry-after", String(Math.max(1, Math.ceil(error.retryAfterMs / 1000))));
  return new Response(JSON.stringify({ error: error.toJSON() }), { status: error.status, headers: out });
}

/** RFC 6750: no error attribute when no credentials were sent, `invalid_token` when they were wrong. */
function bearerChallenge(error: PlatformError): string {
  if (error.code === "unauthorized") return `Bearer realm="${REALM}"`;
  const description = error.message.replace(/["\\]/g, "'");
  return `Bearer realm="${REALM}", error="invalid_token", error_description="${description}"`;
}

/** For anything unexpected: log it with its cause, answer without internals. */
export function unexpectedErrorResponse(error: unknown, context: Record<string, unknown>): Response {
  const platformError = asPlatformError(error);
  if (platformError.code === "internal_error" || platformError.code === "misconfigured") {
    const cause = platformError.cause ?? error;
    logEvent("error", { event: "unexpected_error", ...context, error: String(cause), stack: cause instanceof Error ? cause.stack : undefined });
  }
  return errorResponse(platformError);
}

export function jsonResponse(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json");
  if (!headers.has("cache-control")) headers.set("cache-control", "no-store");
  return new Response(JSON.stringify(body), { ...init, headers });
}
