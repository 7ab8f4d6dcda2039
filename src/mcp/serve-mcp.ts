// The MCP endpoint: a stateless createMcpHandler (agents, MCP SDK v2) that serves
// 2025-era and current clients from one route and builds a fresh McpServer per request.

import type { AuthInfo } from "@modelcontextprotocol/server";
import { createMcpHandler, type StatelessMcpHandler } from "agents/mcp/server";
import type { Contract } from "../contracts/index.ts";
import type { Identity } from "../identity/index.ts";
import type { SubmitDeps } from "../intent/index.ts";
import { logEvent } from "../redaction/index.ts";
import { createMcpServer } from "./create-mcp-server.ts";

export const MCP_ROUTE = "/mcp";

/** Methods that reveal nothing tenant-specific and run nothing: allowed before authentication. */
const DISCOVERY_METHODS = new Set(["initialize", "notifications/initialized", "ping", "tools/list", "server/discover", "notifications/cancelled"]);

/** True when every JSON-RPC message in the body is a discovery method. Reads a clone; the request stays intact. */
export async function isDiscoveryRequest(request: Request): Promise<boolean> {
  if (request.method !== "POST") return true; // GET/DELETE carry no call; the handler answers them.
  let body: unknown;
  try {
    body = await request.clone().json();
  } catch {
    return true; // Not JSON: the handler answers with a parse error, nothing runs.
  }
  const messages = Array.isArray(body) ? body : [body];
  return messages.every((message) => {
    const method = (message as { method?: unknown } | null)?.method;
    return typeof method === "string" && DISCOVERY_METHODS.has(method);
  });
}

export type McpEndpoint = {
  contracts: readonly Contract[];
  deps: SubmitDeps;
  allowedHostnames: string[];
};

// The verified identity travels to the per-request McpServer inside AuthInfo.extra.
const IDENTITY = "agent-exec/identity";
/** And the origin the client reached (for links it is given, such as an approval page). */
const ORIGIN = "agent-exec/origin";

/** Builds the handler once per endpoint (per isolate); each request still gets a fresh McpServer. */
export function mcpHandler(endpoint: McpEndpoint): StatelessMcpHandler {
  return createMcpHandler(
    ({ authInfo }) =>
      createMcpServer(endpoint.contracts, endpoint.deps, authInfo?.extra?.[IDENTITY] as Identity | undefined, authInfo?.extra?.[ORIGIN] as string | undefined),
    {
      route: MCP_ROUTE,
      ...(endpoint.allowedHostnames.length > 0 ? { allowedHostnames: endpoint.allowedHostnames } : {}),
      onerror: (error: Error) => logEvent("error", { event: "mcp_error", error: String(error), stack: error.stack }),
    },
  );
}

export function serveMcp(handler: StatelessMcpHandler, request: Request, identity: Identity | undefined): Promise<Response> {
  if (!identity) return handler.fetch(request);
  const authInfo: AuthInfo = {
    token: "(verified)",
    clientId: identity.actor,
    scopes: identity.roles,
    expiresAt: identity.expiresAt,
    extra: { [IDENTITY]: identity, [ORIGIN]: new URL(request.url).origin },
  };
  return handler.fetch(request, { authInfo });
}
