// Reads and validates the Worker's configuration from its env, in one place.
// Nothing else reads env vars; a bad value fails closed with the variable named.
import { z } from "zod";
import { canonicalHostName } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";

const csv = (fallback: string[]) =>
  z
    .string()
    .optional()
    .transform((value) =>
      value
        ? value
            .split(",")
            .map((part) => part.trim())
            .filter(Boolean)
        : fallback,
    );

const RawConfigSchema = z.object({
  AUTH_ISSUER: z.string().min(1),
  /** The audiences (RFC 8707 resource URLs, or names) a bearer JWT may be issued for, besides the URL of the resource it is presented at. */
  AUTH_AUDIENCE: csv([]),
  /** Production: verify bearer tokens against this JWKS. */
  AUTH_JWKS_URL: z.url({ protocol: /^https?$/ }).optional(),
  /** Local: the public JWK of the development key that `npm start` creates. */
  AUTH_DEV_PUBLIC_JWK: z.string().optional(),
  AUTH_ALGORITHMS: csv(["ES256", "EdDSA", "RS256"]),
  AUTH_TENANT_CLAIM: z.string().min(1).default("tenant"),
  AUTH_ROLES_CLAIM: z.string().min(1).default("roles"),
  AUTH_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(300).default(30),
  /** The OAuth authorization servers (issuer URLs) whose tokens the server takes, published in its RFC 9728 metadata. */
  AUTH_AUTHORIZATION_SERVERS: csv([]),
  /** Hostnames the MCP endpoint accepts in `Host` (DNS-rebinding protection). Empty: the SDK's defaults (localhost and workers.dev URLs only). */
  MCP_ALLOWED_HOSTNAMES: csv([]),
  /** "on" lets initialize, ping and tools/list through without a token (discovery); "off" requires one for everything. */
  MCP_ANONYMOUS_DISCOVERY: z.enum(["on", "off"]).default("off"),
  /**
   * The built-in OAuth authorization server (src/oauth): "off" (default: bearer JWTs of your identity
   * provider only), "oidc" (people sign in at OAUTH_OIDC_ISSUER), "dev" (a local development
   * login page where a person picks tenant, actor and roles; `npm start` sets it, refused beside AUTH_JWKS_URL).
   */
  OAUTH_LOGIN: z.enum(["off", "oidc", "dev"]).default("off"),
  OAUTH_ACCESS_TOKEN_TTL_S: z.coerce.number().int().min(60).max(86_400).default(3600),
  /** How long a grant's refresh token lives (0: no refresh tokens). */
  OAUTH_REFRESH_TOKEN_TTL_S: z.coerce
    .number()
    .int()
    .refine((value) => value === 0 || (value >= 60 && value <= 90 * 86_400), "0, or 60 to 7776000 seconds")
    .default(30 * 86_400),
  /** The OpenID Connect provider people sign in at (OAUTH_LOGIN=oidc): its issuer URL. */
  OAUTH_OIDC_ISSUER: z.url({ protocol: /^https?$/ }).optional(),
  OAUTH_OIDC_CLIENT_ID: z.string().min(1).optional(),
  /** A secret; unset: the platform is a public client of the provider (PKCE only). */
  OAUTH_OIDC_CLIENT_SECRET: z.string().min(1).optional(),
  OAUTH_OIDC_SCOPES: csv(["openid", "profile", "email"]),
  /** "1" exposes the bare-loader baseline route used by `npm run bench`; never set it in production. */
  LOCAL_BENCH: z.enum(["0", "1"]).default("0"),
  /** The policy layer's task-signing key: one private JWK (Ed25519 or P-256) with a kid. A secret. */
  TASK_SIGNING_KEY: z.string().optional(),
  /** Public JWKs of retired signing keys, still accepted and published while tasks they signed may be in flight. */
  TASK_SIGNING_PREVIOUS_KEYS: z.string().optional(),
  /** Trusted planners for POST /v1/tasks: [{ "id", "tenants": [...] | ["*"], "jwk": public JWK with kid }]. */
  TASK_PLANNERS: z.string().optional(),
  TASK_CLOCK_TOLERANCE_S: z.coerce.number().int().min(0).max(60).default(5),
  /** Like curl --resolve: {"host": "http://127.0.0.1:9400"} sends requests for host there (rules still match host). */
  EGRESS_RESOLVE: z.string().optional(),
  /** Set by the local runner only, when it serves other contract/policy folders than the bundled ones. */
  CATALOG_OVERRIDE: z.string().optional(),
  /** Signs evidence exports (GET /v1/sessions/{sid}/export): one private JWK (Ed25519 or P-256) with a kid. A secret. */
  EVIDENCE_SIGNING_KEY: z.string().optional(),
  /** Public JWKs of retired evidence keys, still published so bundles they signed keep verifying. */
  EVIDENCE_SIGNING_PREVIOUS_KEYS: z.string().optional(),
  /** How long past its deadline a run left open (its runtime was lost) waits before the ledger's alarm closes it. */
  EVIDENCE_RECONCILE_GRACE_MS: z.coerce.number().int().min(0).max(86_400_000).default(30_000),
  /** How fresh the budget's last answer must be for an isolate to run a call in a slot it keeps (src/budget/slot-reserve.ts); 0: keep none. */
  SLOT_RESERVE_FRESH_MS: z.coerce.number().int().min(0).max(10_000).default(500),
  /** Bearer secret for the all-tenants view of GET /v1/metrics (Prometheus scrapes, fairness). A secret; unset: tenant views only. */
  METRICS_TOKEN: z.string().min(32, "at least 32 characters").optional(),
  /** What runs the Worker and its sandboxes, for evidence: `npm start` sets "workerd <version>"; unset on Cloudflare. */
  RUNTIME_ENGINE: z.string().min(1).max(64).default("cloudflare-workers"),
  /** Where the tracker capability's API lives; reached through the egress gateway. */
  TRACKER_BASE_URL: z.url({ protocol: /^https?$/ }).default("https://tracker.example.com"),
});

const JwkSchema = z.object({ kty: z.string(), kid: z.string().optional(), alg: z.string().optional() }).loose();
const SigningJwkSchema = JwkSchema.extend({ kid: z.string().min(1), alg: z.enum(["EdDSA", "ES256"]), crv: z.string().optional() }).refine(
  (key) => (key.alg === "EdDSA" ? key.kty === "OKP" && key.crv === "Ed25519" : key.kty === "EC" && key.crv === "P-256"),
  "kty and crv must match alg (EdDSA: OKP Ed25519; ES256: EC P-256)",
);
const PlannerSchema = z.object({
  id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/),
  tenants: z.array(z.string().min(1)).min(1),
  jwk: SigningJwkSchema,
});
export type Jwk = z.infer<typeof JwkSchema>;
export type SigningJwk = z.infer<typeof SigningJwkSchema>;
export type Planner = z.infer<typeof PlannerSchema>;

export type Config = {
  auth: {
    issuer: string;
    /** Accepted audiences besides the URL of the resource a token is presented at. */
    audience: string[];
    algorithms: string[];
    tenantClaim: string;
    rolesClaim: string;
    clockToleranceS: number;
    keys: { kind: "jwks"; url: URL } | { kind: "dev"; jwk: z.infer<typeof JwkSchema> };
    /** Published in the RFC 9728 metadata: where clients get tokens for this server. */
    authorizationServers: string[];
  };
  mcp: { allowedHostnames: string[]; anonymousDiscovery: boolean };
  oauth: OAuthConfig;
  tasks: {
    /** Null when unset: the Worker then runs nothing (every task would be unsigned). */
    signingKey: SigningJwk | null;
    previousKeys: SigningJwk[];
    planners: Planner[];
    clockToleranceS: number;
  };
  egress: { resolve: ReadonlyMap<string, URL> };
  evidence: {
    /** Null when unset: sessions can then be read but not exported. */
    signingKey: SigningJwk | null;
    previousKeys: SigningJwk[];
    reconcileGraceMs: number;
  };
  /** How fresh the budget's answer must be for a kept slot to be used (0: no reserve). */
  slotReserveFreshMs: number;
  /** Bearer secret for the all-tenants metrics view; null: only tenant auditors' views. */
  metricsToken: string | null;
  trackerBaseUrl: URL;
  benchRoutes: boolean;
  /** What runs the Worker and its sandboxes (RUNTIME_ENGINE), as run.started records it. */
  runtimeEngine: string;
  /** The contracts and policy to serve instead of the bundled ones (local runner only). */
  catalogOverride: string | null;
};

export type OAuthConfig = {
  login: "off" | "oidc" | "dev";
  accessTokenTtlS: number;
  refreshTokenTtlS: number;
  /** Set with login "oidc". */
  oidc: { issuer: URL; clientId: string; clientSecret: string | null; scopes: string[]; tenantClaim: string; rolesClaim: string } | null;
};

const cache = new WeakMap<object, Config>();

/** Throws a `misconfigured` PlatformError naming the variable; callers turn it into a 503. */
export function readConfig(env: object): Config {
  const hit = cache.get(env);
  if (hit) return hit;
  const parsed = RawConfigSchema.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PlatformError("misconfigured", `Configuration variable ${String(issue?.path[0] ?? "?")} is invalid: ${issue?.message}`);
  }
  const raw = parsed.data;
  const config: Config = {
    auth: {
      issuer: raw.AUTH_ISSUER,
      audience: raw.AUTH_AUDIENCE,
      algorithms: raw.AUTH_ALGORITHMS,
      tenantClaim: raw.AUTH_TENANT_CLAIM,
      rolesClaim: raw.AUTH_ROLES_CLAIM,
      clockToleranceS: raw.AUTH_CLOCK_TOLERANCE_S,
      keys: authKeys(raw),
      authorizationServers: raw.AUTH_AUTHORIZATION_SERVERS,
    },
    mcp: { allowedHostnames: raw.MCP_ALLOWED_HOSTNAMES, anonymousDiscovery: raw.MCP_ANONYMOUS_DISCOVERY === "on" },
    oauth: oauthConfig(raw),
    tasks: {
      signingKey: raw.TASK_SIGNING_KEY ? jsonVar("TASK_SIGNING_KEY", raw.TASK_SIGNING_KEY, privateOnly(SigningJwkSchema)) : null,
      previousKeys: raw.TASK_SIGNING_PREVIOUS_KEYS
        ? jsonVar("TASK_SIGNING_PREVIOUS_KEYS", raw.TASK_SIGNING_PREVIOUS_KEYS, z.array(publicOnly(SigningJwkSchema)))
        : [],
      planners: raw.TASK_PLANNERS ? jsonVar("TASK_PLANNERS", raw.TASK_PLANNERS, z.array(PlannerSchema.extend({ jwk: publicOnly(SigningJwkSchema) }))) : [],
      clockToleranceS: raw.TASK_CLOCK_TOLERANCE_S,
    },
    egress: {
      resolve: new Map(
        Object.entries(
          raw.EGRESS_RESOLVE ? jsonVar("EGRESS_RESOLVE", raw.EGRESS_RESOLVE, z.record(z.string().min(1), z.url({ protocol: /^https?$/ }))) : {},
        ).map(([host, origin]) => [canonicalHostName(host) ?? host.toLowerCase(), new URL(origin)]),
      ),
    },
    evidence: {
      signingKey: raw.EVIDENCE_SIGNING_KEY ? jsonVar("EVIDENCE_SIGNING_KEY", raw.EVIDENCE_SIGNING_KEY, privateOnly(SigningJwkSchema)) : null,
      previousKeys: raw.EVIDENCE_SIGNING_PREVIOUS_KEYS
        ? jsonVar("EVIDENCE_SIGNING_PREVIOUS_KEYS", raw.EVIDENCE_SIGNING_PREVIOUS_KEYS, z.array(publicOnly(SigningJwkSchema)))
        : [],
      reconcileGraceMs: raw.EVIDENCE_RECONCILE_GRACE_MS,
    },
    slotReserveFreshMs: raw.SLOT_RESERVE_FRESH_MS,
    metricsToken: raw.METRICS_TOKEN ?? null,
    trackerBaseUrl: new URL(raw.TRACKER_BASE_URL),
    benchRoutes: raw.LOCAL_BENCH === "1",
    runtimeEngine: raw.RUNTIME_ENGINE,
    catalogOverride: raw.CATALOG_OVERRIDE ?? null,
  };
  // A kid must name exactly one key, or one planner could sign as another (jose picks by kid and alg).
  const kids = [
    config.tasks.signingKey,
    ...config.tasks.previousKeys,
    ...config.tasks.planners.map((p) => p.jwk),
    config.evidence.signingKey,
    ...config.evidence.previousKeys,
  ].flatMap((key) => (key ? [key.kid] : []));
  const duplicate = kids.find((kid, index) => kids.indexOf(kid) !== index);
  if (duplicate !== undefined)
    throw new PlatformError(
      "misconfigured",
      `Signing keys must have distinct kids; ${duplicate} is used twice (TASK_SIGNING_KEY, TASK_SIGNING_PREVIOUS_KEYS, TASK_PLANNERS, EVIDENCE_SIGNING_KEY, EVIDENCE_SIGNING_PREVIOUS_KEYS).`,
    );
  // The bench routes skip authentication: never beside a production identity provider.
  if (config.benchRoutes && config.auth.keys.kind === "jwks")
    throw new PlatformError("misconfigured", "LOCAL_BENCH=1 is refused when AUTH_JWKS_URL is set: the bench routes are local only.");
  // The development login page lets anyone pick any identity: never beside a production identity provider.
  if (config.oauth.login === "dev" && config.auth.keys.kind === "jwks")
    throw new PlatformError(
      "misconfigured",
      "OAUTH_LOGIN=dev is refused when AUTH_JWKS_URL is set: the development login page is local only; use OAUTH_LOGIN=oidc.",
    );
  cache.set(env, config);
  return config;
}

function oauthConfig(raw: z.infer<typeof RawConfigSchema>): OAuthConfig {
  const base = { login: raw.OAUTH_LOGIN, accessTokenTtlS: raw.OAUTH_ACCESS_TOKEN_TTL_S, refreshTokenTtlS: raw.OAUTH_REFRESH_TOKEN_TTL_S };
  if (raw.OAUTH_LOGIN !== "oidc") return { ...base, oidc: null };
  if (!raw.OAUTH_OIDC_ISSUER || !raw.OAUTH_OIDC_CLIENT_ID)
    throw new PlatformError(
      "misconfigured",
      "OAUTH_LOGIN=oidc needs OAUTH_OIDC_ISSUER and OAUTH_OIDC_CLIENT_ID (and OAUTH_OIDC_CLIENT_SECRET for a confidential client).",
    );
  if (!raw.OAUTH_OIDC_SCOPES.includes("openid")) throw new PlatformError("misconfigured", "Configuration variable OAUTH_OIDC_SCOPES must include openid.");
  return {
    ...base,
    oidc: {
      issuer: new URL(raw.OAUTH_OIDC_ISSUER),
      clientId: raw.OAUTH_OIDC_CLIENT_ID,
      clientSecret: raw.OAUTH_OIDC_CLIENT_SECRET ?? null,
      scopes: raw.OAUTH_OIDC_SCOPES,
      // the ID token names tenant and roles in the same claims a bearer JWT does
      tenantClaim: raw.AUTH_TENANT_CLAIM,
      rolesClaim: raw.AUTH_ROLES_CLAIM,
    },
  };
}

function privateOnly<T extends z.ZodType<object>>(schema: T) {
  return schema.refine((key) => "d" in key, "must be a private key");
}

function publicOnly<T extends z.ZodType<object>>(schema: T) {
  return schema.refine((key) => !("d" in key), "must be a public key (no private part)");
}

/** Parses a JSON-valued variable; the error names the variable and the field, never the value. */
function jsonVar<T>(name: string, text: string, schema: z.ZodType<T>): T {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new PlatformError("misconfigured", `Configuration variable ${name} is not JSON.`, { cause: error });
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PlatformError("misconfigured", `Configuration variable ${name} is invalid at ${issue?.path.join(".") || "(root)"}: ${issue?.message}`);
  }
  return parsed.data;
}

function authKeys(raw: z.infer<typeof RawConfigSchema>): Config["auth"]["keys"] {
  if (raw.AUTH_JWKS_URL) return { kind: "jwks", url: new URL(raw.AUTH_JWKS_URL) };
  if (raw.AUTH_DEV_PUBLIC_JWK) {
    let json: unknown;
    try {
      json = JSON.parse(raw.AUTH_DEV_PUBLIC_JWK);
    } catch (error) {
      throw new PlatformError("misconfigured", "Configuration variable AUTH_DEV_PUBLIC_JWK is not JSON.", { cause: error });
    }
    const jwk = JwkSchema.safeParse(json);
    if (!jwk.success || "d" in jwk.data) {
      throw new PlatformError("misconfigured", "Configuration variable AUTH_DEV_PUBLIC_JWK must be one public JWK.");
    }
    return { kind: "dev", jwk: jwk.data };
  }
  throw new PlatformError("misconfigured", "No token verification key: set AUTH_JWKS_URL (production) or start locally with `npm start`.");
}

/** The egress credentials the platform injects (EGRESS_* values). */
export function egressSecrets(env: object): string[] {
  return Object.entries(env as Record<string, unknown>)
    .filter(([name, value]) => /^EGRESS_[A-Z0-9_]+$/.test(name) && name !== "EGRESS_RESOLVE" && typeof value === "string")
    .map(([, value]) => value as string);
}

/** The values the platform holds that must never appear in evidence, logs or pages: injected egress credentials, private keys, tokens. */
export function platformSecrets(env: object, config: Config): string[] {
  const egress = egressSecrets(env);
  const keys = [config.tasks.signingKey, config.evidence.signingKey].flatMap((key) => (key && typeof key.d === "string" ? [key.d] : []));
  return [
    ...egress,
    ...keys,
    ...(config.metricsToken ? [config.metricsToken] : []),
    ...(config.oauth.oidc?.clientSecret ? [config.oauth.oidc.clientSecret] : []),
  ];
}
