// The Worker: routes requests to the layers and exports the Durable Object classes.
import { readConfig } from "./config/index.ts";
import { contractCatalog } from "./contracts/index.ts";
import { PlatformError } from "./errors/index.ts";
import { authenticate, BENCH_ROUTES, EVIDENCE_ROUTE, errorResponse, jsonResponse, serveBench, serveEvidence, unexpectedErrorResponse } from "./http/index.ts";
import { isDiscoveryRequest, MCP_ROUTE, mcpHandler, SERVER_INFO, serveMcp } from "./mcp/index.ts";

export { SessionLedger } from "./evidence/index.ts";

// One MCP handler per isolate (env is stable for its lifetime); McpServers stay per request.
const handlers = new WeakMap<Env, ReturnType<typeof mcpHandler>>();

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    const url = new URL(request.url);
    try {
      const config = readConfig(env);
      const contracts = contractCatalog().contracts;

      if (url.pathname === "/" && request.method === "GET") {
        return jsonResponse({ ...SERVER_INFO, mcp: MCP_ROUTE, evidence: "/v1/sessions/{sid}/evidence", contracts: contracts.map((c) => c.tool) });
      }

      const auth = await authenticate(request, config);
      if (!auth.ok) return errorResponse(auth.error);

      if (url.pathname === MCP_ROUTE) {
        if (!auth.identity && !(config.mcp.anonymousDiscovery && (await isDiscoveryRequest(request)))) {
          return errorResponse(new PlatformError("unauthorized", "This MCP request needs a bearer token."));
        }
        let handler = handlers.get(env);
        if (!handler) {
          handler = mcpHandler({ contracts, deps: { loader: env.LOADER, ledgers: env.SESSION_LEDGER }, allowedHostnames: config.mcp.allowedHostnames });
          handlers.set(env, handler);
        }
        return await serveMcp(handler, request, auth.identity);
      }

      const evidence = EVIDENCE_ROUTE.exec(url.pathname);
      if (evidence?.[1]) {
        if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Evidence needs a bearer token."));
        return await serveEvidence(request, evidence[1], auth.identity, env.SESSION_LEDGER);
      }

      const benchContract = contracts.find((c) => c.class === "read-only");
      if (config.benchRoutes && request.method === "POST" && benchContract && Object.values<string>(BENCH_ROUTES).includes(url.pathname)) {
        return await serveBench(request, url.pathname, { loader: env.LOADER, ledgers: env.SESSION_LEDGER }, benchContract);
      }
      return errorResponse(new PlatformError("not_found", `No route for ${request.method} ${url.pathname}.`));
    } catch (error) {
      return unexpectedErrorResponse(error, { method: request.method, path: url.pathname });
    }
  },
} satisfies ExportedHandler<Env>;
