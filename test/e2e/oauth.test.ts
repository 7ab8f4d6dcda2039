// The MCP authorization spec as clients nobody here wrote speak it: each SDK's own OAuth flow
// against `npm start` (discovery from the 401, dynamic registration, PKCE, the development
// login page, the token), then tools/list and a tools/call that runs code; tokens bound to
// one resource; every MCP request without a token refused with a challenge that says where
// to get one.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantSession } from "../../src/oauth/grant-session.ts";
import type { LocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient } from "../helpers/mcp-clients.ts";
import { connectWithOAuth, devSignIn, MemoryOAuthClient, signInOnDevPage } from "../helpers/oauth-client.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await sharedServer();
});
afterAll(async () => {
  await server?.stop();
});

type EvidenceRecord = { kind: string; actor: string; tenant: string; session: string; roles?: string[]; credential?: Record<string, unknown> };

async function evidenceOf(session: string, tenant = "acme"): Promise<EvidenceRecord[]> {
  const token = await server.token({ tenant, actor: "auditor-1", session, roles: ["auditor"] });
  const response = await fetch(`${server.url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${token}` } });
  expect(response.status).toBe(200);
  return ((await response.json()) as { records: EvidenceRecord[] }).records;
}

const mcpPost = (url: URL | string, body: unknown, token?: string) =>
  fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });

describe.each(CLIENT_KINDS)("the OAuth flow of %s", (kind) => {
  it("discovers the authorization server from the 401, registers, signs the person in with PKCE, and runs code under that identity", async () => {
    const oauth = new MemoryOAuthClient();
    const label = `s-oauth-${kind.startsWith("sdk") ? "v1" : "v2"}-${Date.now()}`;
    const mcp = await connectWithOAuth(kind, server.mcpUrl, oauth, devSignIn({ tenant: "acme", actor: "oauth-alice", session: label, roles: ["auditor"] }));
    try {
      // what the client learned on the way: the authorization server is this origin, the code came with PKCE S256 for this resource
      expect(oauth.authorizationUrl?.origin).toBe(server.url);
      expect(oauth.authorizationUrl?.searchParams.get("code_challenge_method")).toBe("S256");
      expect(oauth.authorizationUrl?.searchParams.get("resource")).toBe(server.mcpUrl.href);
      expect((await mcp.listTools()).map((tool) => tool.name)).toContain("analyze_readonly");
      const result = await mcp.callTool("analyze_readonly", { code: "export default () => 6 * 7" });
      expect(result.isError ?? false).toBe(false);
      expect(JSON.stringify(result.structuredContent)).toContain("42");
    } finally {
      await mcp.close();
    }
    // the run landed in the session labelled at sign-in (inside the person's own namespace), as the actor and with the role the person picked
    const session = await grantSession("acme", "oauth-alice", label);
    expect(session).toMatch(new RegExp(`^o-[0-9a-f]{12}-${label}$`));
    expect(session).not.toBe(await grantSession("acme", "oauth-mallory", label));
    const records = await evidenceOf(session);
    expect(records.map((record) => [record.kind, record.actor, record.tenant, record.session])).toEqual([
      ["run.started", "oauth-alice", "acme", session],
      ["run.finished", "oauth-alice", "acme", session],
    ]);
    expect(records[0]?.roles).toEqual(["auditor"]);
    // and how the caller proved it: this OAuth client, signed in on the development page
    expect(records[0]?.credential).toMatchObject({ kind: "oauth", clientId: oauth.clientInformation()?.client_id, signedInVia: "development-login" });
  });

  it("records a bearer JWT's issuer and token id as the credential of a run", async () => {
    const session = `s-jwt-credential-${Date.now()}`;
    const mcp = await connectClient(kind, server.mcpUrl, await server.token({ tenant: "acme", actor: "jwt-alice", session }));
    await mcp.callTool("analyze_readonly", { code: "export default () => 1" });
    await mcp.close();
    expect((await evidenceOf(session))[0]?.credential).toMatchObject({ kind: "jwt", issuer: "agent-exec-local", tokenId: expect.any(String) });
  });
});

describe("tokens of the built-in authorization server", () => {
  let token: string;
  const label = `s-oauth-bound-${Date.now()}`;
  let session: string;
  beforeAll(async () => {
    const oauth = new MemoryOAuthClient();
    const mcp = await connectWithOAuth(CLIENT_KINDS[0], server.mcpUrl, oauth, devSignIn({ tenant: "acme", actor: "oauth-bob", session: label }));
    session = await grantSession("acme", "oauth-bob", label);
    await mcp.close();
    token = oauth.accessToken;
  });

  it("are honoured at the MCP endpoint they were issued for", async () => {
    const mcp = await connectClient(CLIENT_KINDS[1], server.mcpUrl, token);
    expect((await mcp.listTools()).length).toBeGreaterThan(0);
    await mcp.close();
  });

  it("are refused at another resource (the same server reached as localhost is another origin): 401", async () => {
    const elsewhere = new URL(server.mcpUrl.href.replace("127.0.0.1", "localhost"));
    const response = await mcpPost(elsewhere, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, token);
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { message: string } }).error.message).toMatch(/not valid for http:\/\/localhost:\d+\/mcp/);
  });

  it("are refused on the REST routes, which take the identity provider's JWTs: 401 naming the resource they are for", async () => {
    const response = await fetch(`${server.url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(401);
    expect(((await response.json()) as { error: { message: string } }).error.message).toContain(`issued for ${server.mcpUrl.href} only`);
  });

  it("are renewed with the grant's refresh token, for the same identity and session; a refresh token two rotations old is dead", async () => {
    const oauth = new MemoryOAuthClient();
    const refreshLabel = `s-oauth-refresh-${Date.now()}`;
    const refreshSession = await grantSession("acme", "oauth-carol", refreshLabel);
    const mcp = await connectWithOAuth(CLIENT_KINDS[1], server.mcpUrl, oauth, devSignIn({ tenant: "acme", actor: "oauth-carol", session: refreshLabel }));
    await mcp.close();
    const clientId = String(oauth.clientInformation()?.client_id);
    const refreshToken = String(oauth.tokens()?.refresh_token ?? "");
    expect(refreshToken).not.toBe("");
    const refresh = (token: string) =>
      fetch(`${server.url}/oauth/token`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ grant_type: "refresh_token", refresh_token: token, client_id: clientId }),
      });
    const renewed = await refresh(refreshToken);
    expect(renewed.status).toBe(200);
    const { access_token, refresh_token: next } = (await renewed.json()) as { access_token: string; refresh_token: string };
    expect(access_token).not.toBe(oauth.accessToken);
    const again = await connectClient(CLIENT_KINDS[0], server.mcpUrl, access_token);
    await again.callTool("analyze_readonly", { code: "export default () => 1" });
    await again.close();
    expect((await evidenceOf(refreshSession)).map((record) => [record.actor, record.session])).toEqual([
      ["oauth-carol", refreshSession],
      ["oauth-carol", refreshSession],
    ]);
    // rotation: the library honours the previous refresh token until its successor is used (a lost answer can be retried); after that it is dead
    expect((await refresh(next)).status).toBe(200);
    expect((await refresh(refreshToken)).status).toBe(400);
  });

  it("are refused once changed by one character", async () => {
    const forged = `${token.slice(0, -1)}${token.endsWith("A") ? "B" : "A"}`;
    const response = await mcpPost(server.mcpUrl, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, forged);
    expect(response.status).toBe(401);
  });
});

describe("audience (RFC 8707) of identity-provider JWTs", () => {
  it("takes a JWT issued for this MCP endpoint's URL", async () => {
    const token = await server.token({ tenant: "acme", actor: "alice", audience: server.mcpUrl.href });
    const response = await mcpPost(server.mcpUrl, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, token);
    expect(response.status).toBe(200);
  });

  it("refuses a JWT issued for another resource with 401", async () => {
    const token = await server.token({ tenant: "acme", actor: "alice", audience: "http://127.0.0.1:1/mcp" });
    const response = await mcpPost(server.mcpUrl, { jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }, token);
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/error="invalid_token".*resource_metadata="/);
  });
});

describe("no token on the MCP endpoint", () => {
  it.each([
    ["initialize", { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "raw", version: "1" } }],
    ["tools/list", {}],
    ["tools/call", { name: "analyze_readonly", arguments: { code: "export default () => 1" } }],
  ])("answers %s with 401 and a challenge naming the metadata and the scope to ask for", async (method, params) => {
    const response = await mcpPost(server.mcpUrl, { jsonrpc: "2.0", id: 1, method, params });
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate") ?? "";
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain(`resource_metadata="${server.url}/.well-known/oauth-protected-resource/mcp"`);
    expect(challenge).toContain('scope="mcp"');
  });

  it("publishes metadata that leads to this origin's authorization server, with registration and PKCE", async () => {
    const resource = (await (await fetch(`${server.url}/.well-known/oauth-protected-resource/mcp`)).json()) as Record<string, unknown>;
    expect(resource).toMatchObject({ resource: server.mcpUrl.href, authorization_servers: [server.url], scopes_supported: ["mcp"] });
    const metadata = (await (await fetch(`${server.url}/.well-known/oauth-authorization-server`)).json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      issuer: server.url,
      authorization_endpoint: `${server.url}/authorize`,
      token_endpoint: `${server.url}/oauth/token`,
      registration_endpoint: `${server.url}/oauth/register`,
      code_challenge_methods_supported: ["S256"],
      protected_resources: [server.mcpUrl.href],
      client_id_metadata_document_supported: true,
    });
  });

  it("takes a client ID metadata document only at an https URL: an http one is refused on the page, never redirected to", async () => {
    const url = new URL(`${server.url}/authorize`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id: "http://127.0.0.1:9/client-metadata.json",
      redirect_uri: "http://127.0.0.1:9/oauth/callback",
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
      resource: server.mcpUrl.href,
    }).toString();
    const response = await fetch(url, { redirect: "manual" });
    expect(response.status).toBe(400);
    expect(response.headers.get("location")).toBeNull();
  });
});

describe("the development login page", () => {
  async function authorizationUrl(): Promise<URL> {
    const oauth = new MemoryOAuthClient();
    await expect(connectClient(CLIENT_KINDS[0], server.mcpUrl)).rejects.toThrow(/401|unauthori[sz]ed/i);
    // registration and the authorization URL, as the SDK builds them
    const registration = await fetch(`${server.url}/oauth/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(oauth.clientMetadata),
    });
    const { client_id } = (await registration.json()) as { client_id: string };
    const url = new URL(`${server.url}/authorize`);
    url.search = new URLSearchParams({
      response_type: "code",
      client_id,
      redirect_uri: oauth.redirect,
      code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      code_challenge_method: "S256",
      state: "st-1",
      resource: server.mcpUrl.href,
      scope: "mcp",
    }).toString();
    return url;
  }

  it("sends a person who denies back to the client with access_denied and the client's state", async () => {
    const back = await signInOnDevPage(await authorizationUrl(), { tenant: "acme", actor: "x", session: "s-x" }, "deny");
    expect(back.searchParams.get("error")).toBe("access_denied");
    expect(back.searchParams.get("state")).toBe("st-1");
  });

  it("refuses a form posted without the browser's binding cookie (a forged consent)", async () => {
    const url = await authorizationUrl();
    const html = await (await fetch(url)).text();
    const handle = /name="handle" value="([^"]+)"/.exec(html)?.[1] ?? "";
    const response = await fetch(`${server.url}/authorize`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ handle, decision: "approve", tenant: "acme", actor: "mallory", session: "s-m" }),
      redirect: "manual",
    });
    expect(response.status).toBe(400);
    expect(response.headers.get("location")).toBeNull();
  });

  it("refuses a tenant the policy does not know, and shows the client and where the tokens go", async () => {
    const url = await authorizationUrl();
    const page = await fetch(url);
    const html = await page.text();
    expect(html).toContain("agent-exec e2e client");
    expect(html).toContain("Access will be sent to <strong>127.0.0.1</strong>");
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    await expect(signInOnDevPage(url, { tenant: "no-such-tenant", actor: "x", session: "s-x" })).rejects.toThrow(/400/);
  });
});
