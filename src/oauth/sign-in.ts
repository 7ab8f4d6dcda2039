// The sign-in behind /authorize (the library validates the request, binds the page to the
// browser and issues the code; who the person is, is ours to say):
// - OAUTH_LOGIN=dev, the local embedded default: a development login page where a person
//   picks tenant, actor, roles and a session name. It answers on loopback origins only, and
//   the configuration refuses it beside a production identity provider.
// - OAUTH_LOGIN=oidc, production: after consent the person signs in at the configured OpenID
//   Connect provider (oidc-upstream.ts); its ID token's claims name actor, tenant and roles.
// Either way the grant carries the same identity a bearer JWT maps to, and the session is
// named at sign-in: fixed for the grant's lifetime, refreshed tokens included.
import { AuthorizationError, type AuthRequest, CimdFetchError, type ConsentDescription, type OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { IdentifierSchema } from "../identity/index.ts";
import { type AuthorizationServers, MCP_SCOPE, OAUTH_ROUTES, OFFLINE_SCOPE } from "./authorization-server.ts";
import { completeSignIn, SignInError } from "./complete-sign-in.ts";
import { SessionLabelSchema } from "./grant-session.ts";
import { finishOidcSignIn, startOidcSignIn } from "./oidc-upstream.ts";

/** Who may sign in as what: the tenants of the policy in force and the roles they use. */
export type Directory = { tenants: readonly string[]; roles: readonly string[] };

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);
const SESSION_RULE = "The session label must be 1-64 letters, digits and . _ @ -.";
const SESSION_FIELD = (name: string) =>
  `<p><label>Session <input name="session" value="${escapeHtml(name)}" required maxlength="64"></label> (a label for the evidence session this client's runs land in, for as long as this sign-in lasts; it is kept among your own sessions)</p>`;

/** GET and POST /authorize. */
export async function serveAuthorize(request: Request, env: Env, servers: AuthorizationServers, directory: Directory): Promise<Response> {
  const url = new URL(request.url);
  if (!servers.enabled)
    return page(404, "No sign-in here", "<p>This server has no authorization server (OAUTH_LOGIN=off): present a bearer token of its identity provider.</p>");
  if (servers.config.login === "dev" && !LOOPBACK.has(url.hostname)) {
    return page(403, "Local only", "<p>The development login page answers on localhost and 127.0.0.1 only.</p>");
  }
  const oauth = servers.serverFor(url.origin).getOAuthApi(env);
  try {
    if (request.method === "GET" || request.method === "HEAD") {
      const authRequest = await oauth.parseAuthRequest(request);
      const details = await oauth.describeConsent(authRequest);
      const consent = await oauth.beginConsent(authRequest);
      const body =
        servers.config.login === "dev" ? devLoginForm(details, consent.handle, directory, authRequest) : consentForm(details, consent.handle, servers);
      return page(200, `Sign in to agent-exec for ${details.clientName}`, body, consent.headers);
    }
    if (request.method !== "POST") return page(405, "Method not allowed", "<p>/authorize takes GET and POST.</p>", new Headers({ allow: "GET, HEAD, POST" }));
    const form = await request.formData();
    const handle = String(form.get("handle") ?? "");
    if (form.get("decision") !== "approve") {
      const denied = await oauth.denyConsent(request, handle);
      return new Response(null, { status: 302, headers: denied.headers });
    }
    if (servers.config.login === "dev") return await completeDevSignIn(request, form, handle, oauth, directory);
    const session = SessionLabelSchema.safeParse(String(form.get("session") ?? "").trim());
    if (!session.success) return page(400, "Sign-in not accepted", `<p>${SESSION_RULE}</p><p>Go back and correct it.</p>`);
    const approved = await oauth.approveConsent(request, handle, { scope: approvedScopes(form, servers.roles) });
    return await startOidcSignIn(approved, oauth, servers.config, url.origin, session.data);
  } catch (error) {
    return authorizationFailure(error);
  }
}

/** GET /oauth/callback: the upstream provider sends the person back (OAUTH_LOGIN=oidc). */
export async function serveSignInCallback(request: Request, env: Env, servers: AuthorizationServers, directory: Directory): Promise<Response> {
  if (servers.config.login !== "oidc") return page(404, "No sign-in here", "<p>This server does not sign people in at an upstream provider.</p>");
  const origin = new URL(request.url).origin;
  try {
    return await finishOidcSignIn(request, servers.serverFor(origin).getOAuthApi(env), servers, origin, directory.tenants);
  } catch (error) {
    return authorizationFailure(error);
  }
}

/** The scopes the person approved: the MCP baseline, the roles they ticked, refresh if the client asked for it. */
function approvedScopes(form: FormData, roles: readonly string[]): string[] {
  const ticked = form.getAll("scope").map(String);
  return [MCP_SCOPE, ...ticked.filter((scope) => roles.includes(scope)), ...(ticked.includes(OFFLINE_SCOPE) ? [OFFLINE_SCOPE] : [])];
}

async function completeDevSignIn(request: Request, form: FormData, handle: string, oauth: OAuthHelpers, directory: Directory): Promise<Response> {
  const tenant = String(form.get("tenant") ?? "");
  const actor = IdentifierSchema.safeParse(String(form.get("actor") ?? "").trim());
  const session = SessionLabelSchema.safeParse(String(form.get("session") ?? "").trim());
  const problems = [
    !directory.tenants.includes(tenant) && `Tenant "${tenant}" is not in the policy (${directory.tenants.join(", ")}).`,
    !actor.success && `The actor must be 1-128 letters, digits and . _ : @ -.`,
    !session.success && SESSION_RULE,
  ].filter((problem): problem is string => typeof problem === "string");
  // nothing is consumed yet: the person goes back to the page and fixes it
  if (problems.length > 0 || !actor.success || !session.success) {
    return page(400, "Sign-in not accepted", `<ul>${problems.map((problem) => `<li>${escapeHtml(problem)}</li>`).join("")}</ul><p>Go back and correct it.</p>`);
  }
  const approved = await oauth.approveConsent(request, handle, { scope: approvedScopes(form, directory.roles) });
  const roles = approved.request.scope.filter((scope) => directory.roles.includes(scope));
  return await completeSignIn(
    oauth,
    approved.request,
    { actor: actor.data, tenant, sessionLabel: session.data, roles, signedInVia: "development-login" },
    approved.headers,
  );
}

function devLoginForm(details: ConsentDescription, handle: string, directory: Directory, authRequest: AuthRequest): string {
  const requested = new Set(authRequest.scope);
  const tenants = directory.tenants.map((tenant, index) => `<option${index === 0 ? " selected" : ""}>${escapeHtml(tenant)}</option>`).join("");
  const roles = directory.roles
    .map(
      (role) => `<label><input type="checkbox" name="scope" value="${escapeHtml(role)}"${requested.has(role) ? " checked" : ""}> ${escapeHtml(role)}</label>`,
    )
    .join("\n");
  return `${clientFacts(details)}
<p><strong>Development login:</strong> pick who to be. Anyone who can reach this page can be anyone; it exists only on a local server.</p>
<form method="post" action="${OAUTH_ROUTES.authorize}">
<input type="hidden" name="handle" value="${escapeHtml(handle)}">
${requested.has(OFFLINE_SCOPE) ? `<input type="hidden" name="scope" value="${OFFLINE_SCOPE}">` : ""}
<p><label>Tenant <select name="tenant">${tenants}</select></label></p>
<p><label>Actor <input name="actor" value="dev" required maxlength="128"></label></p>
${SESSION_FIELD(newSessionName())}
<fieldset><legend>Roles</legend>
${roles}
</fieldset>
<p><button name="decision" value="approve">Sign in and allow</button> <button name="decision" value="deny">Deny</button></p>
</form>`;
}

function consentForm(details: ConsentDescription, handle: string, servers: AuthorizationServers): string {
  const requested = new Set(details.scope);
  const roles = servers.roles
    .filter((role) => requested.has(role))
    .map((role) => `<label><input type="checkbox" name="scope" value="${escapeHtml(role)}" checked> ${escapeHtml(role)}</label>`)
    .join("\n");
  const issuer = servers.config.oidc?.issuer.origin ?? "";
  return `${clientFacts(details)}
<p>You will sign in at <strong>${escapeHtml(issuer)}</strong>; your tenant and roles come from there.</p>
<form method="post" action="${OAUTH_ROUTES.authorize}">
<input type="hidden" name="handle" value="${escapeHtml(handle)}">
${requested.has(OFFLINE_SCOPE) ? `<input type="hidden" name="scope" value="${OFFLINE_SCOPE}">` : ""}
${SESSION_FIELD(newSessionName())}
${roles ? `<fieldset><legend>Roles it asks to use (if you hold them)</legend>\n${roles}\n</fieldset>` : ""}
<p><button name="decision" value="approve">Continue</button> <button name="decision" value="deny">Deny</button></p>
</form>`;
}

/** What the MCP authorization spec asks a consent page to show: who asks, where the tokens go. */
function clientFacts(details: ConsentDescription): string {
  const origin = details.clientDomain
    ? `Published by <strong>${escapeHtml(details.clientDomain)}</strong>.`
    : "This client registered itself; its name is not verified.";
  const loopback = details.redirectIsLoopback
    ? "<p><strong>Access goes to an app on this computer.</strong> Continue only if you just started signing in from it.</p>"
    : "";
  return `<p><strong>${escapeHtml(details.clientName)}</strong> asks to run tools on agent-exec for you. ${origin}</p>
<p>Access will be sent to <strong>${escapeHtml(details.redirectHost)}</strong>.</p>
${loopback}`;
}

function newSessionName(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(9));
  return `s-${btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")}`;
}

/** Expected failures render here (never a redirect unless the library validated the client and its redirect URI). */
export function authorizationFailure(error: unknown): Response {
  if (error instanceof AuthorizationError && error.redirectTo) return new Response(null, { status: 302, headers: { location: error.redirectTo } });
  if (error instanceof AuthorizationError) return page(400, "Sign-in request refused", `<p>${escapeHtml(error.description)}</p>`);
  if (error instanceof CimdFetchError) return page(400, "Client not verified", "<p>This client's metadata document could not be fetched or is invalid.</p>");
  if (error instanceof SignInError) return page(error.status, "Sign-in failed", `<p>${escapeHtml(error.message)}</p>`);
  throw error;
}

const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  // no form-action: browsers apply it to the redirects after the POST (to the client, or the upstream provider)
  "content-security-policy": "default-src 'none'; img-src data:; base-uri 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
};

function page(status: number, title: string, body: string, headers = new Headers()): Response {
  // ours win over the consent helper's (its CSP only forbids framing; the page renders client-supplied text)
  for (const [name, value] of Object.entries(PAGE_HEADERS)) headers.set(name, value);
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${escapeHtml(title)}</title><link rel="icon" href="data:,"></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
  return new Response(html, { status, headers });
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}
