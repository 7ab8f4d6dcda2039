// Every HTTP route of the Worker in one table (Hono). Routes that carry no data (the index,
// the JWKS, the approval page and the viewer with their assets) are public; every other one
// passes the one authentication guard, `signedIn`, which puts the caller's identity on the
// context. The MCP route authenticates itself (discovery may be anonymous by configuration)
// and the metrics route also takes the platform's METRICS_TOKEN, which is not a JWT.
import { type Context, Hono, type MiddlewareHandler } from "hono";
import { routePath } from "hono/route";
import { PlatformError } from "./errors/index.ts";
import {
  APPROVAL_SCRIPT_ROUTE,
  APPROVAL_STYLE_ROUTE,
  APPROVALS_ROUTE,
  authenticate,
  BATCHES_ROUTE,
  BENCH_ROUTES,
  errorResponse,
  INCIDENTS_ROUTE,
  JWKS_ROUTE,
  jsonResponse,
  METRICS_ROUTE,
  presentsMetricsToken,
  RESOURCE_METADATA_ROUTE,
  RESPONSE_MARKER,
  ROLLOUT_ROUTE,
  resourceMetadataUrl,
  STORE_ROUTE,
  serveApproval,
  serveApprovalList,
  serveApprovalPage,
  serveApprovalScript,
  serveApprovalStyle,
  serveBatch,
  serveBench,
  serveEvidence,
  serveExport,
  serveIncidents,
  serveJwks,
  serveMetrics,
  servePolicySnapshot,
  serveResourceMetadata,
  serveRollout,
  serveRolloutEnable,
  serveStoreItems,
  serveTasks,
  serveViewer,
  submitBatch,
  TASKS_ROUTE,
  unexpectedErrorResponse,
  VIEWER_ASSETS,
  withResourceMetadata,
} from "./http/index.ts";
import type { Identity } from "./identity/index.ts";
import { isDiscoveryRequest, MCP_ROUTE, rebindingRefusal, SERVER_INFO, serveMcp, withMcpCors } from "./mcp/index.ts";
import { MCP_SCOPE, OAUTH_ROUTES, serveAuthorize, serveSignInCallback } from "./oauth/index.ts";
import { type Platform, platformFor } from "./platform.ts";

type Routed = { Bindings: Env; Variables: { platform: Platform; identity: Identity } };
type RouteContext = Context<Routed>;

/** The one authentication guard: a valid bearer token, or 401 naming what needed it. */
function signedIn(what: string): MiddlewareHandler<Routed> {
  return async (c, next) => {
    const auth = await authenticate(c.req.raw, authenticator(c));
    if (!auth.ok) return errorResponse(auth.error);
    if (!auth.identity) return errorResponse(new PlatformError("unauthorized", `${what} needs a bearer token.`));
    c.set("identity", auth.identity);
    return await next();
  };
}

/**
 * A path parameter as the client sent it (percent-encoded): the handlers decode and validate
 * their ids once, themselves, as they did before there was a router.
 */
function rawParam(c: RouteContext, name: string): string {
  const index = routePath(c).split("/").indexOf(`:${name}`);
  return new URL(c.req.url).pathname.split("/")[index] ?? "";
}

/** A Host's name (port dropped) is allowed: one of MCP_ALLOWED_HOSTNAMES, or with none configured the MCP SDK's defaults (localhost names, workers.dev). */
function hostAllowed(host: string, allowed: readonly string[]): boolean {
  const name = /^(\[[^\]]*\]|[^:]*)(?::\d+)?$/.exec(host.trim().toLowerCase())?.[1] ?? "";
  if (allowed.length > 0) return allowed.some((entry) => entry.toLowerCase() === name);
  return ["localhost", "127.0.0.1", "[::1]"].includes(name) || name.endsWith(".workers.dev");
}

const authenticator = (c: RouteContext) => ({ config: c.var.platform.config, oauth: c.var.platform.oauth, env: c.env });

function authorizationServer(c: RouteContext): Response | Promise<Response> {
  const { oauth } = c.var.platform;
  if (!oauth.enabled) {
    return errorResponse(
      new PlatformError("not_found", "This server has no authorization server.", {
        hint: "OAUTH_LOGIN is off: use bearer JWTs of the identity provider its /.well-known/oauth-protected-resource names.",
      }),
    );
  }
  return oauth.serverFor(new URL(c.req.url).origin).fetch(c.req.raw, c.env, c.executionCtx as ExecutionContext);
}

const waitUntil = (c: RouteContext) => (promise: Promise<unknown>) => c.executionCtx.waitUntil(promise);

export const routes = new Hono<Routed>();

routes.use(async (c, next) => {
  c.set("platform", platformFor(c.env, c.executionCtx.exports));
  await next();
  // the local supervisor tells the Worker's answers from wrangler's own by the marker (a copy: some answers' headers are immutable)
  const marked = new Response(c.res.body, c.res);
  marked.headers.set(RESPONSE_MARKER, "1");
  // no answer is to be sniffed into another type (an export carries code from evidence as JSON text)
  marked.headers.set("x-content-type-options", "nosniff");
  c.res = marked;
  // every 401 (and insufficient_scope 403) points at the metadata that says where to get a token (RFC 9728, the MCP authorization spec);
  // set on c.res itself: replacing c.res copies the old answer's headers over the new one's
  const challenge = c.res.headers.get("www-authenticate");
  if ((c.res.status === 401 || c.res.status === 403) && challenge && !Object.values<string>(OAUTH_ROUTES).includes(new URL(c.req.url).pathname)) {
    const url = new URL(c.req.url);
    const mcp = url.pathname === MCP_ROUTE;
    const scope = mcp && c.res.status === 401 && c.var.platform.oauth.enabled ? MCP_SCOPE : null;
    c.res.headers.set("www-authenticate", withResourceMetadata(challenge, resourceMetadataUrl(url.origin, mcp ? MCP_ROUTE : ""), scope));
  }
});
// DNS-rebinding protection for every route, as the MCP SDK gives /mcp: a page or script on
// another origin that resolves its own name to this server gets nothing but a refusal.
routes.use(async (c, next) => {
  if (new URL(c.req.url).pathname === MCP_ROUTE) return await next(); // the MCP SDK checks it there, the same way
  const host = c.req.header("host") ?? new URL(c.req.url).host;
  if (!hostAllowed(host, c.var.platform.config.mcp.allowedHostnames)) {
    return errorResponse(
      new PlatformError("forbidden", `This server does not answer to the Host ${JSON.stringify(host.slice(0, 100))}.`, {
        hint: "Reach it by a name in MCP_ALLOWED_HOSTNAMES (locally localhost or 127.0.0.1).",
      }),
    );
  }
  return await next();
});
routes.onError((error, c) => unexpectedErrorResponse(error, { method: c.req.method, path: new URL(c.req.url).pathname }));
routes.notFound((c) => errorResponse(new PlatformError("not_found", `No route for ${c.req.method} ${new URL(c.req.url).pathname}.`)));

// Public: they carry no data.
routes.get("/", (c) =>
  jsonResponse({
    ...SERVER_INFO,
    mcp: MCP_ROUTE,
    evidence: "/v1/sessions/{sid}/evidence",
    export: "/v1/sessions/{sid}/export",
    viewer: "/sessions/{sid}",
    policy: "/v1/policy/{hash}",
    metrics: METRICS_ROUTE,
    batches: BATCHES_ROUTE,
    approvals: APPROVALS_ROUTE,
    incidents: INCIDENTS_ROUTE,
    rollout: ROLLOUT_ROUTE,
    tasks: TASKS_ROUTE,
    jwks: JWKS_ROUTE,
    contracts: c.var.platform.catalog.contracts.map((contract) => contract.tool),
  }),
);
routes.get(JWKS_ROUTE, (c) => serveJwks(c.var.platform.keys));
routes.get(RESOURCE_METADATA_ROUTE, (c) => serveResourceMetadata(new URL(c.req.url).origin, "", c.var.platform.config.auth, null));
routes.get(`${RESOURCE_METADATA_ROUTE}${MCP_ROUTE}`, (c) =>
  serveResourceMetadata(new URL(c.req.url).origin, MCP_ROUTE, c.var.platform.config.auth, c.var.platform.oauth),
);

// The built-in authorization server (OAUTH_LOGIN): the library's discovery, registration and
// token endpoints, and our sign-in behind /authorize.
routes.all(OAUTH_ROUTES.metadata, (c) => authorizationServer(c));
routes.all(OAUTH_ROUTES.token, (c) => authorizationServer(c));
routes.all(OAUTH_ROUTES.register, (c) => authorizationServer(c));
routes.all(OAUTH_ROUTES.authorize, (c) => serveAuthorize(c.req.raw, c.env, c.var.platform.oauth, c.var.platform.directory));
routes.get(OAUTH_ROUTES.callback, (c) => serveSignInCallback(c.req.raw, c.env, c.var.platform.oauth, c.var.platform.directory));
routes.all("/approvals/:id", (c) => serveApprovalPage(c.req.raw, rawParam(c, "id")));
routes.all(APPROVAL_SCRIPT_ROUTE, () => serveApprovalScript());
routes.all(APPROVAL_STYLE_ROUTE, () => serveApprovalStyle());
routes.all("/sessions/:sid", (c) => serveViewer(c.req.raw, new URL(c.req.url).pathname));
routes.all(VIEWER_ASSETS.script, (c) => serveViewer(c.req.raw, VIEWER_ASSETS.script));
routes.all(VIEWER_ASSETS.style, (c) => serveViewer(c.req.raw, VIEWER_ASSETS.style));

// MCP: DNS-rebinding checks first, then authenticated here, since discovery may be anonymous by opt-in (MCP_ANONYMOUS_DISCOVERY=on).
routes.all(MCP_ROUTE, async (c) => {
  const { platform } = c.var;
  const rebound = rebindingRefusal(c.req.raw, platform.config.mcp.allowedHostnames);
  if (rebound) return rebound;
  // a browser's CORS preflight carries no token; the handler answers it and nothing else
  if (c.req.method === "OPTIONS") return await serveMcp(platform.mcp, c.req.raw, undefined, platform.env.APPROVALS, waitUntil(c));
  const auth = await authenticate(c.req.raw, authenticator(c));
  if (!auth.ok) return withMcpCors(errorResponse(auth.error));
  if (!auth.identity && !(platform.config.mcp.anonymousDiscovery && (await isDiscoveryRequest(c.req.raw)))) {
    return withMcpCors(errorResponse(new PlatformError("unauthorized", "This MCP request needs a bearer token.")));
  }
  return await serveMcp(platform.mcp, c.req.raw, auth.identity, platform.env.APPROVALS, waitUntil(c));
});

// Metrics: the platform's view with METRICS_TOKEN, a tenant auditor's view with a bearer token.
routes.all(METRICS_ROUTE, async (c, next) => {
  const { platform } = c.var;
  if (!presentsMetricsToken(c.req.raw, platform.config.metricsToken)) return await next();
  return await serveMetrics(
    c.req.raw,
    { kind: "platform" },
    { budgets: platform.env.TENANT_BUDGET, policy: platform.catalog.policy, leases: platform.deps.leases },
  );
});
routes.all(METRICS_ROUTE, signedIn("Metrics (an auditor's token, or the platform's METRICS_TOKEN)"), (c) => {
  const { platform, identity } = c.var;
  return serveMetrics(
    c.req.raw,
    { kind: "tenant", identity },
    { budgets: platform.env.TENANT_BUDGET, policy: platform.catalog.policy, leases: platform.deps.leases },
  );
});

// Everything else needs a caller.
routes.all("/v1/sessions/:sid/evidence", signedIn("Evidence"), (c) =>
  serveEvidence(c.req.raw, rawParam(c, "sid"), c.var.identity, c.var.platform.env.SESSION_LEDGER),
);
routes.all("/v1/sessions/:sid/export", signedIn("Exporting evidence"), (c) =>
  serveExport(c.req.raw, rawParam(c, "sid"), c.var.identity, c.var.platform.exports),
);
routes.all("/v1/policy/:hash", signedIn("Policy snapshots"), (c) =>
  servePolicySnapshot(c.req.raw, rawParam(c, "hash"), c.var.identity, c.var.platform.env.POLICY_ARCHIVE),
);
routes.all(ROLLOUT_ROUTE, signedIn("The rollout"), (c) => serveRollout(c.req.raw, c.var.identity, c.var.platform.env.TENANT_BUDGET));
routes.all("/v1/rollout/:phase{[123]}/enable", signedIn("The rollout"), async (c) => {
  const { platform, identity } = c.var;
  const response = await serveRolloutEnable(c.req.raw, Number(c.req.param("phase")), identity, platform.env.TENANT_BUDGET);
  // this isolate's next call of the tenant asks the budget again (other isolates within SLOT_RESERVE_FRESH_MS)
  platform.deps.leases.forget(identity.tenant);
  return response;
});
routes.all(INCIDENTS_ROUTE, signedIn("Linking incidents"), (c) => serveIncidents(c.req.raw, c.var.identity, c.var.platform.env.TENANT_BUDGET));
routes.all(APPROVALS_ROUTE, signedIn("Approvals"), (c) => serveApprovalList(c.req.raw, c.var.identity, c.var.platform.env.APPROVALS));
routes.all("/v1/approvals/:id", signedIn("Approvals"), (c) =>
  serveApproval(c.req.raw, rawParam(c, "id"), c.var.identity, c.var.platform.env.APPROVALS, c.var.platform.env.TENANT_BUDGET),
);
routes.all(BATCHES_ROUTE, signedIn("Submitting a batch"), (c) => submitBatch(c.req.raw, c.var.identity, c.var.platform.batches));
routes.all("/v1/batches/:id", signedIn("Reading a batch"), (c) => serveBatch(c.req.raw, rawParam(c, "id"), false, c.var.identity, c.var.platform.batches));
routes.all("/v1/batches/:id/evidence", signedIn("Reading a batch"), (c) =>
  serveBatch(c.req.raw, rawParam(c, "id"), true, c.var.identity, c.var.platform.batches),
);
routes.all(STORE_ROUTE, signedIn("Loading the store"), (c) => serveStoreItems(c.req.raw, c.var.identity, c.var.platform.env.TENANT_STORE));
routes.all(TASKS_ROUTE, signedIn("Submitting tasks"), (c) => {
  const { platform, identity } = c.var;
  return serveTasks(c.req.raw, identity, platform.deps, platform.catalog.contracts, platform.planners);
});

// Only with LOCAL_BENCH=1 (never in production): see src/http/bench-routes.ts.
routes.post("/__bench/:route", async (c, next) => {
  const { platform } = c.var;
  const path = new URL(c.req.url).pathname;
  const contract = platform.catalog.contracts.find((candidate) => candidate.class === "read-only");
  if (!platform.config.benchRoutes || !contract || !Object.values<string>(BENCH_ROUTES).includes(path)) return await next();
  return await serveBench(c.req.raw, path, { ...platform.deps, loader: platform.env.LOADER, budgets: platform.env.TENANT_BUDGET }, contract, waitUntil(c));
});
