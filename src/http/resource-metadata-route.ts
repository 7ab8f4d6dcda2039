// GET /.well-known/oauth-protected-resource[/mcp]: the OAuth 2.0 Protected Resource
// Metadata (RFC 9728) the MCP authorization spec asks of a resource server, and the
// challenge every 401 carries that points at it. A client that only has the server's URL
// learns from them who issues tokens for it and how to present one.
import type { Config } from "../config/index.ts";
import { type AuthorizationServers, MCP_SCOPE } from "../oauth/index.ts";

export const RESOURCE_METADATA_ROUTE = "/.well-known/oauth-protected-resource";

/** The metadata document's URL for a protected path of this origin ("/mcp", or "" for the origin itself). */
export function resourceMetadataUrl(origin: string, path: string): string {
  return `${origin}${RESOURCE_METADATA_ROUTE}${path}`;
}

/**
 * The metadata for the resource `${origin}${path}`: its identifier exactly as a client builds
 * the well-known URL from it (RFC 9728 section 3.3), the authorization servers whose tokens it
 * takes (for the MCP endpoint, this origin's own first when OAUTH_LOGIN is on), the scope a
 * client asks for first, and that tokens go in the Authorization header.
 */
export function serveResourceMetadata(origin: string, path: string, auth: Config["auth"], oauth: AuthorizationServers | null): Response {
  const own = oauth?.enabled ? [origin] : [];
  const servers = [...own, ...auth.authorizationServers.filter((server) => !own.includes(server))];
  const body = {
    resource: `${origin}${path}`,
    ...(servers.length > 0 ? { authorization_servers: servers } : {}),
    ...(own.length > 0 ? { scopes_supported: [MCP_SCOPE] } : {}),
    bearer_methods_supported: ["header"],
    resource_name: "agent-exec",
  };
  return new Response(JSON.stringify(body), {
    headers: { "content-type": "application/json", "cache-control": "public, max-age=300", "access-control-allow-origin": "*" },
  });
}

/**
 * A 401's challenge with the metadata's URL added (`resource_metadata`), as the MCP authorization
 * spec requires, and the scope to ask for first where none is named yet (the MCP endpoint, when this server issues tokens).
 */
export function withResourceMetadata(challenge: string, metadataUrl: string, scope: string | null = null): string {
  const withScope = scope && !/\bscope=/.test(challenge) ? `${challenge}, scope="${scope}"` : challenge;
  return withScope.includes("resource_metadata=") ? withScope : `${withScope}, resource_metadata="${metadataUrl}"`;
}
