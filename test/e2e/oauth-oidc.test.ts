// Production's sign-in (OAUTH_LOGIN=oidc) against a real OpenID Connect provider on this
// machine (panva's oidc-provider, with its own login and consent pages): the MCP client's
// OAuth flow sends the person to /authorize, the platform asks for consent and sends them on
// to the provider, and at /oauth/callback reads actor, tenant and roles from the ID token.
import { createServer, type Server } from "node:http";
import Provider from "oidc-provider";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantSession } from "../../src/oauth/grant-session.ts";
import { freePort, type LocalServer, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS } from "../helpers/mcp-clients.ts";
import { connectWithOAuth, HttpBrowser, MemoryOAuthClient, type SignIn } from "../helpers/oauth-client.ts";

const CLIENT_SECRET = "agent-exec-at-the-test-idp-0123456789";
/** The provider's accounts: the claims its ID tokens carry. */
const ACCOUNTS: Record<string, { tenant?: string; roles?: string[] }> = {
  "erin@acme": { tenant: "acme", roles: ["auditor", "not-a-platform-role"] },
  "nobody@nowhere": {},
  "zed@initech": { tenant: "initech", roles: ["auditor"] },
};

let server: LocalServer;
let idp: Server;
let issuer: string;

beforeAll(async () => {
  issuer = `http://127.0.0.1:${await freePort()}`;
  server = await startLocalServer({
    env: { OAUTH_LOGIN: "oidc", OAUTH_OIDC_ISSUER: issuer, OAUTH_OIDC_CLIENT_ID: "agent-exec", OAUTH_OIDC_CLIENT_SECRET: CLIENT_SECRET },
  });
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: "agent-exec",
        client_secret: CLIENT_SECRET,
        redirect_uris: [`${server.url}/oauth/callback`],
        // the default (Basic): what the platform picks when the provider lists it
      },
    ],
    async findAccount(_ctx, sub) {
      const account = ACCOUNTS[sub];
      if (!account) return undefined;
      return { accountId: sub, claims: async () => ({ sub, ...account }) };
    },
    claims: { openid: ["sub"], profile: ["tenant", "roles"], email: [] },
    // the ID token carries the profile claims (the platform reads no userinfo)
    conformIdTokenClaims: false,
    pkce: { required: () => true },
    ttl: { Interaction: 600, Session: 600, Grant: 600, AccessToken: 600, IdToken: 600 },
    features: { devInteractions: { enabled: true } },
  });
  idp = createServer(provider.callback());
  await new Promise<void>((listening) => idp.listen(Number(new URL(issuer).port), "127.0.0.1", listening));
});

afterAll(async () => {
  await server?.stop();
  await new Promise((closed) => idp?.close(closed));
});

/** The person: consents on the platform's page, signs in at the provider as `login`, consents there too. */
function signInAt(login: string, session: string, roles: string[] = []): SignIn {
  return async (authorizationUrl, redirectUri) => {
    const browser = new HttpBrowser();
    const consent = await browser.go(authorizationUrl);
    expect(consent.status, consent.html).toBe(200);
    expect(consent.html).toContain(`You will sign in at <strong>${issuer}</strong>`);
    const providerLogin = await browser.submit(consent, { decision: "approve", session, scope: roles }, redirectUri);
    expect(providerLogin.url.origin).toBe(issuer);
    const providerConsent = await browser.submit(providerLogin, { login, password: "any" }, redirectUri);
    const back = providerConsent.status === 0 ? providerConsent : await browser.submit(providerConsent, {}, redirectUri);
    if (back.status !== 0) throw new Error(`the sign-in ended at ${back.url.href} (${back.status}): ${back.html.slice(0, 400)}`);
    return back.url;
  };
}

describe("sign-in at an upstream OpenID Connect provider (OAUTH_LOGIN=oidc)", () => {
  it.each(CLIENT_KINDS)("gives %s a token for the person the ID token names, and runs code as them", async (kind) => {
    const oauth = new MemoryOAuthClient();
    const label = `s-oidc-${kind.startsWith("sdk") ? "v1" : "v2"}-${Date.now()}`;
    const session = await grantSession("acme", "erin@acme", label);
    const mcp = await connectWithOAuth(kind, server.mcpUrl, oauth, signInAt("erin@acme", label, ["auditor"]));
    try {
      const result = await mcp.callTool("analyze_readonly", { code: "export default () => 'signed in upstream'" });
      expect(result.isError ?? false).toBe(false);
    } finally {
      await mcp.close();
    }
    // the run is in the session named at sign-in, as erin of acme, with the one platform role the provider gave and the client asked for
    const auditor = await server.token({ tenant: "acme", actor: "audit", session, roles: ["auditor"] });
    const response = await fetch(`${server.url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${auditor}` } });
    expect(response.status).toBe(200);
    const { records } = (await response.json()) as {
      records: Array<{ kind: string; actor: string; tenant: string; roles?: string[]; credential?: Record<string, unknown> }>;
    };
    expect(records.map((record) => [record.kind, record.actor, record.tenant])).toEqual([
      ["run.started", "erin@acme", "acme"],
      ["run.finished", "erin@acme", "acme"],
    ]);
    expect(records[0]?.roles).toEqual(["auditor"]);
    expect(records[0]?.credential).toMatchObject({ kind: "oauth", signedInVia: `${issuer}/` });
  });

  it("refuses a person whose ID token names no tenant, and gives the client nothing", async () => {
    const oauth = new MemoryOAuthClient();
    await expect(connectWithOAuth(CLIENT_KINDS[0], server.mcpUrl, oauth, signInAt("nobody@nowhere", "s-nobody"))).rejects.toThrow(/403.*names no tenant/s);
  });

  it("refuses a person whose tenant the policy does not serve", async () => {
    const oauth = new MemoryOAuthClient();
    await expect(connectWithOAuth(CLIENT_KINDS[1], server.mcpUrl, oauth, signInAt("zed@initech", "s-zed"))).rejects.toThrow(
      /403.*initech.*is not served here/s,
    );
  });
});
