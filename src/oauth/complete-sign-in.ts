// The last step of every sign-in: the grant is stored with the person's identity and the
// client gets its code.
import type { AuthRequest, OAuthHelpers } from "@cloudflare/workers-oauth-provider";
import { type GrantProps, grantUserId, MCP_SCOPE, OFFLINE_SCOPE } from "./authorization-server.ts";
import { grantSession } from "./grant-session.ts";

/**
 * Completes an authorization for a person: the grant stores their identity, with the session
 * label they chose put in their own namespace (grantSession); its scopes are the approved ones they hold.
 */
export async function completeSignIn(
  oauth: OAuthHelpers,
  request: AuthRequest,
  person: Omit<GrantProps, "session"> & { sessionLabel: string },
  headers: Headers,
): Promise<Response> {
  const { sessionLabel, ...identity } = person;
  const props: GrantProps = { ...identity, session: await grantSession(person.tenant, person.actor, sessionLabel) };
  const { redirectTo } = await oauth.completeAuthorization({
    request,
    userId: grantUserId(props.tenant, props.actor),
    // storage-visible (grants are listed and revoked by it): no secrets, the identity's names only
    metadata: { tenant: props.tenant, actor: props.actor, session: props.session, signedInVia: props.signedInVia },
    scope: request.scope.filter((scope) => scope === MCP_SCOPE || scope === OFFLINE_SCOPE || props.roles.includes(scope)),
    props,
  });
  headers.set("location", redirectTo);
  return new Response(null, { status: 302, headers });
}

/** A sign-in that failed for a reason the person should read (the provider refused, a claim is missing). */
export class SignInError extends Error {
  readonly status: number;

  constructor(message: string, status = 400) {
    super(message);
    this.status = status;
  }
}
