// The Worker: routes requests to the layers and exports the Durable Object classes.
import type { JWK } from "jose";
import { type BatchMessage, consumeTask } from "./batch/index.ts";
import { SlotReserve } from "./budget/index.ts";
import { type Catalog, catalogFor } from "./catalog/index.ts";
import { type Config, platformSecrets, readConfig } from "./config/index.ts";
import { PlatformError } from "./errors/index.ts";
import { EXPORT_TYPE, type ExportClaims, jwtSigner } from "./evidence/index.ts";
import { POLICY_ISSUER, plannerTrust, policyTrust, publishedKeys, type SandboxService, type TaskTrust } from "./execution/index.ts";
import {
  APPROVAL_PAGE_ROUTE,
  APPROVAL_ROUTE,
  APPROVAL_SCRIPT_ROUTE,
  APPROVAL_STYLE_ROUTE,
  APPROVALS_ROUTE,
  authenticate,
  BATCH_ROUTE,
  BATCHES_ROUTE,
  type BatchDeps,
  BENCH_ROUTES,
  EVIDENCE_ROUTE,
  EXPORT_ROUTE,
  type ExportDeps,
  errorResponse,
  INCIDENTS_ROUTE,
  isViewerRequest,
  JWKS_ROUTE,
  jsonResponse,
  METRICS_ROUTE,
  POLICY_ROUTE,
  presentsMetricsToken,
  RESPONSE_MARKER,
  ROLLOUT_ENABLE_ROUTE,
  ROLLOUT_ROUTE,
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
  serveRollout,
  serveRolloutEnable,
  serveStoreItems,
  serveTasks,
  serveViewer,
  submitBatch,
  TASKS_ROUTE,
  unexpectedErrorResponse,
} from "./http/index.ts";
import type { SubmitDeps } from "./intent/index.ts";
import { isDiscoveryRequest, MCP_ROUTE, mcpHandler, SERVER_INFO, serveMcp } from "./mcp/index.ts";
import { policyInForce, taskSigner } from "./policy/index.ts";
import { logEvent, redactLogsOf } from "./redaction/index.ts";

export { ApprovalDesk } from "./approval/approval-desk.ts";
export { BatchRecord } from "./batch/batch-record.ts";
export { TenantBudget } from "./budget/tenant-budget.ts";
export { SessionLedger } from "./evidence/session-ledger.ts";
export { DocsCapability } from "./execution/capability-docs.ts";
export { TrackerCapability } from "./execution/capability-tracker.ts";
export { EgressGateway } from "./execution/egress-gateway.ts";
export { SandboxHost } from "./execution/sandbox-host.ts";
export { TenantStore } from "./execution/tenant-store.ts";
export { PolicyArchive } from "./policy/policy-archive.ts";

/** What one isolate builds once: the bundled catalog, the policy in force, task and evidence keys, the MCP handler. */
type Platform = {
  catalog: Catalog;
  deps: SubmitDeps;
  planners: TaskTrust;
  exports: ExportDeps;
  batches: BatchDeps;
  keys: JWK[];
  mcp: ReturnType<typeof mcpHandler>;
};
const platforms = new WeakMap<Env, Platform>();

/**
 * Where runs start: the Worker's own SandboxHost entrypoint, or the SANDBOX_HOST binding where
 * configuration provides one (`npm start` binds it to sandbox runtime processes of their own).
 */
function sandboxService(env: Env, exports: Cloudflare.Exports): SandboxService {
  const bound = (env as Env & { SANDBOX_HOST?: SandboxService }).SANDBOX_HOST;
  return bound ?? (exports.SandboxHost as unknown as SandboxService);
}

function platformFor(env: Env, config: Config, exports: Cloudflare.Exports): Platform {
  let platform = platforms.get(env);
  if (!platform) {
    const catalog = catalogFor(config.catalogOverride);
    const secrets = platformSecrets(env, config);
    // server logs of this isolate are redacted with the same values as evidence
    redactLogsOf(secrets);
    const deps: SubmitDeps = {
      sandboxes: sandboxService(env, exports),
      ledgers: env.SESSION_LEDGER,
      budgets: env.TENANT_BUDGET,
      approvals: env.APPROVALS,
      secrets,
      policy: policyInForce(catalog.policy, catalog.contracts, env.POLICY_ARCHIVE),
      tasks: {
        signer: config.tasks.signingKey ? taskSigner(config.tasks.signingKey) : null,
        trust: policyTrust(config.tasks, POLICY_ISSUER),
        clockToleranceS: config.tasks.clockToleranceS,
      },
      reconcileGraceMs: config.evidence.reconcileGraceMs,
      reserve: new SlotReserve(env.TENANT_BUDGET, { freshMs: config.slotReserveFreshMs }),
    };
    const keys = [...publishedKeys(config.tasks), ...publishedKeys(config.evidence)];
    platform = {
      catalog,
      deps,
      planners: plannerTrust(config.tasks.planners),
      keys,
      exports: {
        ledgers: env.SESSION_LEDGER,
        archive: env.POLICY_ARCHIVE,
        signer: config.evidence.signingKey ? jwtSigner<ExportClaims>(config.evidence.signingKey, EXPORT_TYPE) : null,
        keys,
      },
      batches: { batches: env.BATCHES, queue: env.BATCH_QUEUE, ledgers: env.SESSION_LEDGER, contracts: catalog.contracts },
      mcp: mcpHandler({ contracts: catalog.contracts, deps, allowedHostnames: config.mcp.allowedHostnames }),
    };
    platforms.set(env, platform);
  }
  return platform;
}

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const response = await route(request, env, ctx);
    const marked = new Response(response.body, response);
    marked.headers.set(RESPONSE_MARKER, "1");
    return marked;
  },

  /** The batch lane: at most 4 task messages per invocation (max_batch_size), run side by side. */
  async queue(batch: MessageBatch<BatchMessage>, env: Env, ctx: ExecutionContext): Promise<void> {
    const platform = platformFor(env, readConfig(env), ctx.exports);
    const deps = {
      submit: platform.deps,
      batches: env.BATCHES,
      budgets: env.TENANT_BUDGET,
      contracts: platform.catalog.contracts,
      policy: platform.catalog.policy,
      planners: platform.planners,
    };
    await Promise.all(
      batch.messages.map((message) =>
        consumeTask(message, deps).catch((error: unknown) => {
          // the task stays claimed (its run, if any, is in the ledger); the message is not retried into a second run
          logEvent("error", { event: "batch_task_failed", ...message.body, error: String(error) });
          message.ack();
        }),
      ),
    );
  },
} satisfies ExportedHandler<Env, BatchMessage>;

async function route(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const url = new URL(request.url);
  try {
    const config = readConfig(env);
    const platform = platformFor(env, config, ctx.exports);

    if (url.pathname === "/" && request.method === "GET") {
      return jsonResponse({
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
        contracts: platform.catalog.contracts.map((c) => c.tool),
      });
    }

    if (url.pathname === JWKS_ROUTE && request.method === "GET") return serveJwks(platform.keys);
    // The platform's metrics token is not a JWT: it is checked before token authentication.
    if (url.pathname === METRICS_ROUTE && presentsMetricsToken(request, config.metricsToken)) {
      return await serveMetrics(request, { kind: "platform" }, { budgets: env.TENANT_BUDGET, policy: platform.catalog.policy, reserve: platform.deps.reserve });
    }
    // The approval page and its script carry no data either.
    const approvalPage = APPROVAL_PAGE_ROUTE.exec(url.pathname);
    if (approvalPage?.[1]) return serveApprovalPage(request, approvalPage[1]);
    if (url.pathname === APPROVAL_SCRIPT_ROUTE) return serveApprovalScript();
    if (url.pathname === APPROVAL_STYLE_ROUTE) return serveApprovalStyle();
    // The viewer page and its assets carry no data; the page reads the export with the token it is given.
    if (isViewerRequest(url.pathname)) return serveViewer(request, url.pathname);

    const auth = await authenticate(request, config);
    if (!auth.ok) return errorResponse(auth.error);

    if (url.pathname === MCP_ROUTE) {
      if (!auth.identity && !(config.mcp.anonymousDiscovery && (await isDiscoveryRequest(request)))) {
        return errorResponse(new PlatformError("unauthorized", "This MCP request needs a bearer token."));
      }
      return await serveMcp(platform.mcp, request, auth.identity, env.APPROVALS, (promise) => ctx.waitUntil(promise));
    }

    const evidence = EVIDENCE_ROUTE.exec(url.pathname);
    if (evidence?.[1]) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Evidence needs a bearer token."));
      return await serveEvidence(request, evidence[1], auth.identity, env.SESSION_LEDGER);
    }

    const exported = EXPORT_ROUTE.exec(url.pathname);
    if (exported?.[1]) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Exporting evidence needs a bearer token."));
      return await serveExport(request, exported[1], auth.identity, platform.exports);
    }

    if (url.pathname === METRICS_ROUTE) {
      if (!auth.identity)
        return errorResponse(new PlatformError("unauthorized", "Metrics need a bearer token (an auditor's, or the platform's METRICS_TOKEN)."));
      return await serveMetrics(
        request,
        { kind: "tenant", identity: auth.identity },
        { budgets: env.TENANT_BUDGET, policy: platform.catalog.policy, reserve: platform.deps.reserve },
      );
    }

    const policy = POLICY_ROUTE.exec(url.pathname);
    if (policy?.[1]) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Policy snapshots need a bearer token."));
      return await servePolicySnapshot(request, policy[1], auth.identity, env.POLICY_ARCHIVE);
    }

    if (url.pathname === ROLLOUT_ROUTE) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "The rollout needs a bearer token."));
      return await serveRollout(request, auth.identity, env.TENANT_BUDGET);
    }
    const enable = ROLLOUT_ENABLE_ROUTE.exec(url.pathname);
    if (enable?.[1]) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "The rollout needs a bearer token."));
      const response = await serveRolloutEnable(request, Number(enable[1]), auth.identity, env.TENANT_BUDGET);
      // this isolate's next call of the tenant asks the budget again (other isolates within SLOT_RESERVE_FRESH_MS)
      platform.deps.reserve?.forget(auth.identity.tenant);
      return response;
    }

    if (url.pathname === INCIDENTS_ROUTE) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Linking incidents needs a bearer token."));
      return await serveIncidents(request, auth.identity, env.TENANT_BUDGET);
    }

    if (url.pathname === APPROVALS_ROUTE) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Approvals need a bearer token."));
      return await serveApprovalList(request, auth.identity, env.APPROVALS);
    }
    const approvalPath = APPROVAL_ROUTE.exec(url.pathname);
    if (approvalPath?.[1]) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Approvals need a bearer token."));
      return await serveApproval(request, approvalPath[1], auth.identity, env.APPROVALS, env.TENANT_BUDGET);
    }

    if (url.pathname === BATCHES_ROUTE) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Submitting a batch needs a bearer token."));
      return await submitBatch(request, auth.identity, platform.batches);
    }
    const batchPath = BATCH_ROUTE.exec(url.pathname);
    if (batchPath?.[1]) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Reading a batch needs a bearer token."));
      return await serveBatch(request, batchPath[1], batchPath[2] !== undefined, auth.identity, platform.batches);
    }

    if (url.pathname === STORE_ROUTE) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Loading the store needs a bearer token."));
      return await serveStoreItems(request, auth.identity, env.TENANT_STORE);
    }

    if (url.pathname === TASKS_ROUTE) {
      if (!auth.identity) return errorResponse(new PlatformError("unauthorized", "Submitting tasks needs a bearer token."));
      return await serveTasks(request, auth.identity, platform.deps, platform.catalog.contracts, platform.planners);
    }

    const benchContract = platform.catalog.contracts.find((c) => c.class === "read-only");
    if (config.benchRoutes && request.method === "POST" && benchContract && Object.values<string>(BENCH_ROUTES).includes(url.pathname)) {
      return await serveBench(request, url.pathname, { ...platform.deps, loader: env.LOADER }, benchContract, (promise) => ctx.waitUntil(promise));
    }
    return errorResponse(new PlatformError("not_found", `No route for ${request.method} ${url.pathname}.`));
  } catch (error) {
    return unexpectedErrorResponse(error, { method: request.method, path: url.pathname });
  }
}
