// The platform's own OAuth 2.1 authorization server, for MCP clients that cannot set a header
// (desktop and web connectors): @cloudflare/workers-oauth-provider serves discovery (RFC
// 8414), dynamic client registration (RFC 7591), client ID metadata documents, the token
// endpoint with PKCE, refresh and revocation; the sign-in behind /authorize is ours
// (sign-in.ts). Each token it issues is bound to one resource, this origin's MCP endpoint
// (RFC 8707), and carries the identity the person signed in as: actor, tenant, session and
// roles, the same Identity a bearer JWT of the configured identity provider maps to.
import { OAuthAuthorizationServer } from "@cloudflare/workers-oauth-provider";
import { z } from "zod";
import type { OAuthConfig } from "../config/index.ts";
import { PlatformError } from "../errors/index.ts";
import { IdentifierSchema, type Identity, type VerifyResult } from "../identity/index.ts";

export const OAUTH_ROUTES = {
  metadata: "/.well-known/oauth-authorization-server",
  authorize: "/authorize",
  token: "/oauth/token",
  register: "/oauth/register",
  /** Where the upstream OpenID Connect provider sends the person back (OAUTH_LOGIN=oidc). */
  callback: "/oauth/callback",
} as const;

/** The scope every MCP client asks for first (the resource's baseline); roles are scopes of their own. */
export const MCP_SCOPE = "mcp";
export const OFFLINE_SCOPE = "offline_access";

/** What a grant stores (encrypted, in OAUTH_KV) and every token of it carries. */
export const GrantPropsSchema = z.object({
  actor: IdentifierSchema,
  tenant: IdentifierSchema,
  session: IdentifierSchema,
  roles: z.array(z.string().min(1).max(64)).max(32),
  /** How the person signed in: the development page, or the upstream provider's issuer. */
  signedInVia: z.string().min(1).max(256),
});
export type GrantProps = z.infer<typeof GrantPropsSchema>;

/** A grant's user id in KV: tenant and actor, base64url (the library reserves ':' and '.' would look like a JWT). */
export function grantUserId(tenant: string, actor: string): string {
  const bytes = new TextEncoder().encode(`${tenant}\n${actor}`);
  return btoa(String.fromCharCode(...bytes))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replace(/=+$/, "");
}

/** A client id as evidence keeps it: itself, or (a long metadata-document URL) its digest. */
async function recordedClientId(clientId: string): Promise<string> {
  if (clientId.length <= 256) return clientId;
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(clientId)));
  return `sha256:${Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("")}`;
}

/** The library's tokens are `userId:grantId:secret`; a JWT is three dot-separated parts and has no ':'. */
export function isIssuedToken(token: string): boolean {
  return token.split(":").length === 3 && !token.includes(".");
}

/** How long an isolate trusts a validated token before asking KV again (a revoked grant stops working within it). */
export const VALIDATED_TTL_MS = 60_000;
const VALIDATED_MAX = 2_048;
/** Origins one isolate keeps an authorization server for (the Host check bounds them; this bounds memory anyway). */
const ORIGINS_MAX = 16;

/**
 * One authorization server per origin the Worker is reached at: its issuer is that origin and
 * its one resource that origin's MCP endpoint, so a token obtained at http://localhost:8787 is
 * not honoured at http://127.0.0.1:8787 (another resource), exactly as in production, where
 * there is one origin.
 */
export class AuthorizationServers {
  readonly #servers = new Map<string, OAuthAuthorizationServer<Env>>();
  readonly #validated = new Map<string, { identity: Identity; until: number }>();
  /** Everything a client may ask for: the MCP baseline, each role, refresh tokens. */
  readonly scopes: string[];

  readonly config: OAuthConfig;
  /** The protected path tokens are for (the MCP endpoint). */
  readonly resourcePath: string;
  /** The roles a person may hold (every tenant's in the policy): a token's roles are those it was granted as scopes. */
  readonly roles: readonly string[];

  constructor(config: OAuthConfig, resourcePath: string, roles: readonly string[]) {
    this.config = config;
    this.resourcePath = resourcePath;
    this.roles = roles;
    this.scopes = [MCP_SCOPE, ...roles, OFFLINE_SCOPE];
  }

  get enabled(): boolean {
    return this.config.login !== "off";
  }

  resourceOf(origin: string): string {
    return `${origin}${this.resourcePath}`;
  }

  /** The authorization server whose issuer is `origin`. */
  serverFor(origin: string): OAuthAuthorizationServer<Env> {
    let server = this.#servers.get(origin);
    if (!server) {
      server = new OAuthAuthorizationServer<Env>({
        issuer: origin,
        resources: [this.resourceOf(origin)],
        authorizeEndpoint: `${origin}${OAUTH_ROUTES.authorize}`,
        tokenEndpoint: `${origin}${OAUTH_ROUTES.token}`,
        clientRegistrationEndpoint: `${origin}${OAUTH_ROUTES.register}`,
        scopesSupported: this.scopes,
        accessTokenTTL: this.config.accessTokenTtlS,
        refreshTokenTTL: this.config.refreshTokenTtlS,
        // Client ID metadata documents: needs the global_fetch_strictly_public flag (SSRF), else the library leaves it unadvertised
        clientIdMetadataDocumentEnabled: hasStrictlyPublicFetch(),
        // a person is asked once per client; the newest grant replaces older ones of the same client (the library's default)
      });
      if (this.#servers.size >= ORIGINS_MAX) this.#servers.delete(this.#servers.keys().next().value as string);
      this.#servers.set(origin, server);
    }
    return server;
  }

  /** The caller a token this server issued names, if it is valid for `origin`'s MCP endpoint. */
  async identityOf(token: string, origin: string, env: Env): Promise<VerifyResult> {
    const key = `${origin} ${token}`;
    const now = Date.now();
    const hit = this.#validated.get(key);
    if (hit && hit.until > now) return { ok: true, identity: hit.identity };
    if (hit) this.#validated.delete(key);
    let validated: Awaited<ReturnType<OAuthAuthorizationServer<Env>["validateToken"]>>;
    try {
      validated = await this.serverFor(origin).validateToken(this.resourceOf(origin), token, env);
    } catch (error) {
      return { ok: false, error: new PlatformError("auth_unavailable", "The authorization server's token store could not be read.", { cause: error }) };
    }
    if (!validated) {
      return {
        ok: false,
        error: new PlatformError(
          "invalid_token",
          `The token is not valid for ${this.resourceOf(origin)}: unknown, expired or revoked, or issued for another resource.`,
        ),
      };
    }
    const props = GrantPropsSchema.safeParse(validated.props);
    if (!props.success) return { ok: false, error: new PlatformError("invalid_token", "The token's grant holds no identity this server can read.") };
    const identity: Identity = {
      actor: props.data.actor,
      tenant: props.data.tenant,
      session: props.data.session,
      // a role counts only where the token was granted it as a scope
      roles: props.data.roles.filter((role) => validated.scope.includes(role)),
      tokenId: `grant:${token.split(":")[1]}`,
      expiresAt: validated.expiresAt,
      credential: {
        kind: "oauth",
        clientId: await recordedClientId(validated.clientId),
        grant: token.split(":")[1] ?? "",
        signedInVia: props.data.signedInVia,
      },
    };
    if (this.#validated.size >= VALIDATED_MAX) this.#validated.delete(this.#validated.keys().next().value as string);
    this.#validated.set(key, { identity, until: Math.min(now + VALIDATED_TTL_MS, validated.expiresAt * 1_000) });
    return { ok: true, identity };
  }
}

function hasStrictlyPublicFetch(): boolean {
  const flags = (globalThis as { Cloudflare?: { compatibilityFlags?: Record<string, boolean> } }).Cloudflare?.compatibilityFlags;
  return flags?.global_fetch_strictly_public === true;
}
