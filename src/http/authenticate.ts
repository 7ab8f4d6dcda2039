// Turns the Authorization header into an Identity, or an error. "No header" is not an error
// here: each route decides whether it needs a caller. Two kinds of bearer token name a caller:
// JWTs of the configured identity provider (any route; audience AUTH_AUDIENCE or the URL of the
// resource they are presented at, RFC 8707) and tokens of the built-in authorization server
// (the MCP endpoint only: they are bound to it).
import type { Config } from "../config/index.ts";
import { PlatformError } from "../errors/index.ts";
import { bearerToken, type Identity, verifyToken } from "../identity/index.ts";
import { type AuthorizationServers, isIssuedToken } from "../oauth/index.ts";

export type Authentication = { ok: true; identity: Identity | undefined } | { ok: false; error: PlatformError };

export type Authenticator = { config: Config; oauth: AuthorizationServers; env: Env };

/** The protected resource a request is for (RFC 9728): the MCP endpoint, or the origin for every other route. */
export function resourceOf(url: URL, oauth: AuthorizationServers): string {
  return url.pathname === oauth.resourcePath ? oauth.resourceOf(url.origin) : url.origin;
}

export async function authenticate(request: Request, { config, oauth, env }: Authenticator): Promise<Authentication> {
  const header = bearerToken(request.headers.get("authorization"));
  if (!header.ok) return header;
  if (header.token === null) return { ok: true, identity: undefined };
  const url = new URL(request.url);
  const resource = resourceOf(url, oauth);
  if (isIssuedToken(header.token)) {
    if (!oauth.enabled)
      return { ok: false, error: new PlatformError("invalid_token", "The token is not a JWT, and this server issues no tokens of its own (OAUTH_LOGIN=off).") };
    if (resource !== oauth.resourceOf(url.origin)) {
      return {
        ok: false,
        error: new PlatformError(
          "invalid_token",
          `The token was issued for ${oauth.resourceOf(url.origin)} only; this route takes bearer JWTs of the identity provider.`,
        ),
      };
    }
    return await oauth.identityOf(header.token, url.origin, env);
  }
  const verified = await verifyToken(header.token, config.auth, resource);
  return verified.ok ? { ok: true, identity: verified.identity } : verified;
}
