// The composition root: what one isolate builds once from its bindings and configuration
// (the bundled catalog, the policy in force, task and evidence keys, the budget leases, the
// MCP handler), and hands to the routes and the queue consumer.
import type { JWK } from "jose";
import type { ConsumerDeps } from "./batch/index.ts";
import { SlotReserve } from "./budget/index.ts";
import { type Catalog, catalogFor } from "./catalog/index.ts";
import { type Config, platformSecrets, readConfig } from "./config/index.ts";
import { EXPORT_TYPE, type ExportClaims, jwtSigner } from "./evidence/index.ts";
import { POLICY_ISSUER, plannerTrust, policyTrust, publishedKeys, type SandboxService, sandboxRuntime, type TaskTrust } from "./execution/index.ts";
import type { BatchDeps, ExportDeps } from "./http/index.ts";
import type { SubmitDeps } from "./intent/index.ts";
import { redactLogsOf } from "./log/index.ts";
import { MCP_ROUTE, mcpHandler } from "./mcp/index.ts";
import { AuthorizationServers, type Directory } from "./oauth/index.ts";
import { policyInForce, taskSigner } from "./policy/index.ts";

export type Platform = {
  env: Env;
  config: Config;
  catalog: Catalog;
  /** What every run needs (the run path's dependencies). */
  deps: SubmitDeps;
  planners: TaskTrust;
  exports: ExportDeps;
  batches: BatchDeps;
  consumer: ConsumerDeps;
  /** The public keys of task and evidence signatures (the JWKS route). */
  keys: JWK[];
  mcp: ReturnType<typeof mcpHandler>;
  /** The built-in authorization server (one per origin), for tokens of clients that sign a person in. */
  oauth: AuthorizationServers;
  /** Who may sign in as what: the policy's tenants and their roles. */
  directory: Directory;
};

const platforms = new WeakMap<Env, Platform>();

/** The isolate's platform, built on first use (the bindings object is the same for every request of an isolate). */
export function platformFor(env: Env, exports: Cloudflare.Exports): Platform {
  let platform = platforms.get(env);
  if (!platform) {
    platform = buildPlatform(env, readConfig(env), exports);
    platforms.set(env, platform);
  }
  return platform;
}

/**
 * Where runs start: the Worker's own SandboxHost entrypoint, or the SANDBOX_HOST binding where
 * configuration provides one (`npm start` binds it to sandbox runtime processes of their own).
 */
function sandboxService(env: Env, exports: Cloudflare.Exports): SandboxService {
  const bound = (env as Env & { SANDBOX_HOST?: SandboxService }).SANDBOX_HOST;
  return bound ?? (exports.SandboxHost as unknown as SandboxService);
}

function buildPlatform(env: Env, config: Config, exports: Cloudflare.Exports): Platform {
  const catalog = catalogFor(config.catalogOverride);
  const secrets = platformSecrets(env, config);
  // server logs of this isolate are redacted with the same values as evidence
  redactLogsOf(secrets);
  const deps: SubmitDeps = {
    sandboxes: sandboxService(env, exports),
    ledgers: env.SESSION_LEDGER,
    leases: new SlotReserve(env.TENANT_BUDGET, { freshMs: config.slotReserveFreshMs }),
    approvals: env.APPROVALS,
    secrets,
    policy: policyInForce(catalog.policy, catalog.contracts, env.POLICY_ARCHIVE, catalog.connectors),
    tasks: {
      signer: config.tasks.signingKey ? taskSigner(config.tasks.signingKey) : null,
      trust: policyTrust(config.tasks, POLICY_ISSUER),
      clockToleranceS: config.tasks.clockToleranceS,
    },
    reconcileGraceMs: config.evidence.reconcileGraceMs,
    runtime: sandboxRuntime(config.runtimeEngine, env.CF_VERSION_METADATA),
    connectors: catalog.connectors,
  };
  const keys = [...publishedKeys(config.tasks), ...publishedKeys(config.evidence)];
  const planners = plannerTrust(config.tasks.planners);
  const tenants = Object.keys(catalog.policy.tenants).sort();
  const directory: Directory = { tenants, roles: [...new Set(tenants.flatMap((tenant) => catalog.policy.tenants[tenant]?.roles ?? []))].sort() };
  return {
    env,
    config,
    catalog,
    deps,
    planners,
    keys,
    exports: {
      ledgers: env.SESSION_LEDGER,
      archive: env.POLICY_ARCHIVE,
      signer: config.evidence.signingKey ? jwtSigner<ExportClaims>(config.evidence.signingKey, EXPORT_TYPE) : null,
      keys,
    },
    batches: { batches: env.BATCHES, queue: env.BATCH_QUEUE, ledgers: env.SESSION_LEDGER, contracts: catalog.contracts },
    consumer: { submit: deps, batches: env.BATCHES, contracts: catalog.contracts, policy: catalog.policy, planners },
    mcp: mcpHandler({ contracts: catalog.contracts, deps, allowedHostnames: config.mcp.allowedHostnames }),
    oauth: new AuthorizationServers(config.oauth, MCP_ROUTE, directory.roles),
    directory,
  };
}
