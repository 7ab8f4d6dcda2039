// Production sign-in (OAUTH_LOGIN=oidc): after the person consents, the platform sends them to
// the configured OpenID Connect provider (authorization code + PKCE + nonce, via oauth4webapi),
// and at /oauth/callback reads who they are from the validated ID token: `sub` is the actor,
// the tenant and roles claims (AUTH_TENANT_CLAIM, AUTH_ROLES_CLAIM) the tenant and roles, the
// same claims a bearer JWT of that provider carries. The library binds `state` to the browser.
import { type ApprovedConsent, authorizationErrorRedirect, type OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import * as oidc from "oauth4webapi";
import type { OAuthConfig } from "../config/index.ts";
import { IdentifierSchema } from "../identity/index.ts";
import { type AuthorizationServers, OAUTH_ROUTES } from "./authorization-server.ts";
import { completeSignIn, SignInError } from "./complete-sign-in.ts";

type Upstream = NonNullable<OAuthConfig["oidc"]>;
type Pending = { verifier: string; nonce: string; sessionLabel: string };

const discovered = new Map<string, Promise<oidc.AuthorizationServer>>();

/** http is allowed for a provider on this machine only (tests, a local IdP); production providers are https. */
function requestOptions(upstream: Upstream) {
  const local = upstream.issuer.protocol === "http:" && ["localhost", "127.0.0.1", "[::1]"].includes(upstream.issuer.hostname);
  return local ? { [oidc.allowInsecureRequests]: true } : {};
}

/** The provider's metadata, discovered once per isolate (again after a failure). */
function providerOf(upstream: Upstream): Promise<oidc.AuthorizationServer> {
  const key = upstream.issuer.href;
  let metadata = discovered.get(key);
  if (!metadata) {
    metadata = oidc
      .discoveryRequest(upstream.issuer, { algorithm: "oidc", ...requestOptions(upstream) })
      .then((response) => oidc.processDiscoveryResponse(upstream.issuer, response));
    metadata.catch(() => discovered.delete(key));
    discovered.set(key, metadata);
  }
  return metadata;
}

/** The client and how it authenticates at the provider's token endpoint: a public client (PKCE only), or its secret the way the provider takes it (Basic unless it lists only post). */
function clientOf(upstream: Upstream, provider: oidc.AuthorizationServer): { client: oidc.Client; auth: oidc.ClientAuth } {
  const methods = provider.token_endpoint_auth_methods_supported;
  const secret = upstream.clientSecret;
  const auth = !secret
    ? oidc.None()
    : methods && !methods.includes("client_secret_basic") && methods.includes("client_secret_post")
      ? oidc.ClientSecretPost(secret)
      : oidc.ClientSecretBasic(secret);
  return { client: { client_id: upstream.clientId }, auth };
}

/** The provider's metadata, or a page saying it cannot be reached. */
async function reachProvider(upstream: Upstream): Promise<oidc.AuthorizationServer> {
  return await providerOf(upstream).catch((error: unknown) => {
    throw new SignInError(`The sign-in provider ${upstream.issuer.origin} could not be reached (${String(error)}).`, 502);
  });
}

/** After consent: off to the provider, with the request (and PKCE verifier, nonce) kept server-side. */
export async function startOidcSignIn(
  approved: ApprovedConsent,
  oauth: OAuthHelpers,
  config: OAuthConfig,
  origin: string,
  sessionLabel: string,
): Promise<Response> {
  const upstream = config.oidc;
  if (!upstream) throw new SignInError("No upstream OpenID Connect provider is configured.", 503);
  const provider = await reachProvider(upstream);
  if (!provider.authorization_endpoint) throw new SignInError("The sign-in provider publishes no authorization endpoint.", 502);
  const pending: Pending = { verifier: oidc.generateRandomCodeVerifier(), nonce: oidc.generateRandomNonce(), sessionLabel };
  const { state, headers } = await oauth.beginUpstream(approved.request, { data: pending, headers: approved.headers });
  const to = new URL(provider.authorization_endpoint);
  to.searchParams.set("response_type", "code");
  to.searchParams.set("client_id", upstream.clientId);
  to.searchParams.set("redirect_uri", `${origin}${OAUTH_ROUTES.callback}`);
  to.searchParams.set("scope", upstream.scopes.join(" "));
  to.searchParams.set("state", state);
  to.searchParams.set("nonce", pending.nonce);
  to.searchParams.set("code_challenge", await oidc.calculatePKCECodeChallenge(pending.verifier));
  to.searchParams.set("code_challenge_method", "S256");
  headers.set("location", to.href);
  return new Response(null, { status: 302, headers });
}

/** The provider sent the person back: exchange the code, read the ID token, complete the client's authorization. */
export async function finishOidcSignIn(
  request: Request,
  oauth: OAuthHelpers,
  servers: AuthorizationServers,
  origin: string,
  tenants: readonly string[],
): Promise<Response> {
  const upstream = servers.config.oidc;
  if (!upstream) throw new SignInError("No upstream OpenID Connect provider is configured.", 503);
  const { request: original, data, headers } = await oauth.finishUpstream<Pending>(request);
  const url = new URL(request.url);
  if (url.searchParams.has("error")) {
    const why = url.searchParams.get("error_description") ?? url.searchParams.get("error") ?? "sign-in refused";
    headers.set("location", authorizationErrorRedirect(original, "access_denied", `The sign-in provider refused: ${why.slice(0, 200)}`));
    return new Response(null, { status: 302, headers });
  }
  const provider = await reachProvider(upstream);
  const { client, auth } = clientOf(upstream, provider);
  let claims: oidc.IDToken | undefined;
  try {
    // the library checked state against the browser's binding cookie; the provider's answer is checked here (iss, code)
    const params = oidc.validateAuthResponse(provider, client, url, oidc.skipStateCheck);
    const response = await oidc.authorizationCodeGrantRequest(
      provider,
      client,
      auth,
      params,
      `${origin}${OAUTH_ROUTES.callback}`,
      data.verifier,
      requestOptions(upstream),
    );
    const result = await oidc.processAuthorizationCodeResponse(provider, client, response, { expectedNonce: data.nonce, requireIdToken: true });
    claims = oidc.getValidatedIdTokenClaims(result);
  } catch (error) {
    throw new SignInError(`The sign-in provider's answer was refused: ${error instanceof Error ? error.message : String(error)}`, 502);
  }
  if (!claims) throw new SignInError("The sign-in provider returned no ID token.", 502);
  const actor = IdentifierSchema.safeParse(claims.sub);
  const tenant = IdentifierSchema.safeParse(claims[upstream.tenantClaim]);
  if (!actor.success)
    throw new SignInError("Your account's subject (sub) is not an identifier this platform accepts (1-128 letters, digits and . _ : @ -).", 403);
  if (!tenant.success)
    throw new SignInError(`Your account names no tenant (the "${upstream.tenantClaim}" claim of the ID token); ask your administrator.`, 403);
  if (!tenants.includes(tenant.data)) throw new SignInError(`Your account's tenant "${tenant.data}" is not served here; ask your administrator.`, 403);
  const held = claims[upstream.rolesClaim];
  const heldRoles = typeof held === "string" ? held.split(" ") : Array.isArray(held) ? held.filter((role) => typeof role === "string") : [];
  const roles = servers.roles.filter((role) => heldRoles.includes(role) && original.scope.includes(role));
  return await completeSignIn(
    oauth,
    original,
    { actor: actor.data, tenant: tenant.data, sessionLabel: data.sessionLabel, roles, signedInVia: upstream.issuer.href },
    headers,
  );
}
