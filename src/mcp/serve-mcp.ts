// The MCP endpoint: a stateless createMcpHandler (agents, MCP SDK v2) that serves
// 2025-era and current clients from one route and builds a fresh McpServer per request.

import {
  type AuthInfo,
  hostHeaderValidationResponse,
  localhostAllowedHostnames,
  localhostAllowedOrigins,
  originValidationResponse,
} from "@modelcontextprotocol/server";
import { createMcpHandler, type StatelessMcpHandler } from "agents/mcp/server";
import { type ApprovalDesk, deskFor } from "../approval/index.ts";
import type { Contract } from "../contracts/index.ts";
import type { Identity } from "../identity/index.ts";
import type { SubmitDeps } from "../intent/index.ts";
import { logEvent } from "../log/index.ts";
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
/** And whether the request speaks a 2025-era revision (where URL elicitation is the -32042 error). */
const LEGACY = "agent-exec/legacy";
/** And the request's waitUntil, for bookkeeping after the answer. */
const WAIT_UNTIL = "agent-exec/wait-until";
/** And its W3C traceparent header, for the run to continue. */
const TRACEPARENT = "agent-exec/traceparent";

/** The MCP endpoint's handler, and the names of its tools (an unknown one is answered with them). */
export type McpEndpointHandler = StatelessMcpHandler & { readonly tools: readonly string[] };

/** Builds the handler once per endpoint (per isolate); each request still gets a fresh McpServer. */
export function mcpHandler(endpoint: McpEndpoint): McpEndpointHandler {
  const handler = createMcpHandler(
    ({ authInfo }) =>
      createMcpServer(endpoint.contracts, endpoint.deps, authInfo?.extra?.[IDENTITY] as Identity | undefined, {
        origin: authInfo?.extra?.[ORIGIN] as string | undefined,
        legacy: authInfo?.extra?.[LEGACY] === true,
        waitUntil: authInfo?.extra?.[WAIT_UNTIL] as ((promise: Promise<unknown>) => void) | undefined,
        traceparent: authInfo?.extra?.[TRACEPARENT] as string | undefined,
      }),
    {
      route: MCP_ROUTE,
      corsOptions: { exposeHeaders: MCP_CORS.expose },
      ...(endpoint.allowedHostnames.length > 0 ? { allowedHostnames: endpoint.allowedHostnames } : {}),
      onerror: (error: Error) => logEvent("error", { event: "mcp_error", error: String(error), stack: error.stack }),
    },
  );
  return Object.assign(handler, { tools: endpoint.contracts.map((contract) => contract.tool).sort() });
}

/**
 * What a browser client may read of an answer from /mcp: the MCP SDK handler's CORS headers,
 * plus WWW-Authenticate, which a browser-based client (MCP Inspector's direct mode) must read
 * to start its OAuth flow from a 401.
 */
const MCP_CORS = { origin: "*", expose: "mcp-session-id, WWW-Authenticate" };

/** An answer of the /mcp route given before the handler (a refusal), with the handler's CORS headers. */
export function withMcpCors(response: Response): Response {
  const answer = new Response(response.body, response);
  answer.headers.set("access-control-allow-origin", MCP_CORS.origin);
  answer.headers.set("access-control-expose-headers", MCP_CORS.expose);
  return answer;
}

/**
 * DNS-rebinding protection before anything else, authentication included: the MCP SDK's own
 * Host and Origin checks with the lists the handler uses (MCP_ALLOWED_HOSTNAMES, or the
 * loopback names on a loopback URL and the worker's own name on workers.dev), so a rebound
 * page gets 403 whether or not it has a token. Undefined when the request may go on.
 */
export function rebindingRefusal(request: Request, allowedHostnames: readonly string[]): Response | undefined {
  const { hostname } = new URL(request.url);
  const workersDev = hostname.endsWith(".workers.dev");
  const hosts =
    allowedHostnames.length > 0
      ? [...allowedHostnames]
      : localhostAllowedHostnames().includes(hostname)
        ? localhostAllowedHostnames()
        : workersDev
          ? [hostname]
          : undefined;
  const origins = [...localhostAllowedOrigins(), ...(workersDev ? [hostname] : [])];
  const refusal = (hosts ? hostHeaderValidationResponse(request, hosts) : undefined) ?? originValidationResponse(request, origins);
  return refusal && withMcpCors(refusal);
}

export async function serveMcp(
  handler: McpEndpointHandler,
  request: Request,
  identity: Identity | undefined,
  approvals?: DurableObjectNamespace<ApprovalDesk>,
  waitUntil?: (promise: Promise<unknown>) => void,
): Promise<Response> {
  if (!identity) return await handler.fetch(request);
  const version = request.headers.get("mcp-protocol-version") ?? "";
  const legacy = !version.startsWith("2026-");
  // Read once here and handed on: otherwise the handler reads the body twice more (era check,
  // transport). Read, not cloned: a clone is one more request and body stream per call for the
  // runtime to collect. A body that is not JSON goes to the handler as it came, for its own error.
  let parsedBody: unknown;
  let forHandler = request;
  if (request.method === "POST") {
    const text = await request.text();
    try {
      parsedBody = JSON.parse(text);
    } catch {
      forHandler = new Request(request, { body: text });
    }
  }
  const unknown = unknownTool(parsedBody, handler.tools);
  if (unknown) return unknown;
  // A 2025-era client declares URL-mode elicitation once, at initialize, on another request than its tool calls.
  if (legacy && approvals && parsedBody !== undefined) await rememberCapabilities(parsedBody, identity, approvals);
  const authInfo: AuthInfo = {
    token: "(verified)",
    clientId: identity.actor,
    scopes: identity.roles,
    expiresAt: identity.expiresAt,
    extra: {
      [IDENTITY]: identity,
      [ORIGIN]: new URL(request.url).origin,
      [LEGACY]: legacy,
      ...(waitUntil ? { [WAIT_UNTIL]: waitUntil } : {}),
      ...(request.headers.has("traceparent") ? { [TRACEPARENT]: request.headers.get("traceparent") } : {}),
    },
  };
  return await handler.fetch(forHandler, { authInfo, ...(parsedBody === undefined ? {} : { parsedBody }) });
}

async function rememberCapabilities(body: unknown, identity: Identity, approvals: DurableObjectNamespace<ApprovalDesk>): Promise<void> {
  const initialize = (Array.isArray(body) ? body : [body]).find((m) => (m as { method?: unknown } | null)?.method === "initialize") as
    | { params?: { capabilities?: { elicitation?: { url?: unknown } } } }
    | undefined;
  if (!initialize) return;
  await deskFor(approvals, identity.tenant).rememberClient(identity.session, initialize.params?.capabilities?.elicitation?.url !== undefined);
}

/** A tools/call naming no tool of this server: answered here, with the names of the tools there are (JSON-RPC invalid params). */
function unknownTool(body: unknown, tools: readonly string[]): Response | null {
  const call = body as { jsonrpc?: unknown; id?: unknown; method?: unknown; params?: { name?: unknown } } | null;
  if (!call || Array.isArray(body) || call.method !== "tools/call" || call.id === undefined) return null;
  const name = call.params?.name;
  if (typeof name === "string" && tools.includes(name)) return null;
  const asked = typeof name === "string" ? `"${name.slice(0, 100)}"` : "(no name)";
  return Response.json({
    jsonrpc: "2.0",
    id: call.id,
    error: { code: -32602, message: `Unknown tool ${asked}. This server's tools: ${tools.join(", ")}.`, data: { tools } },
  });
}
