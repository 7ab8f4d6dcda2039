// The OAuth side of the two real MCP clients: an in-memory OAuthClientProvider (what a
// desktop client keeps on disk) handed to each SDK's own transport, which then discovers the
// authorization server from the 401, registers, sends the person to /authorize with PKCE and
// redeems the code. The person is played over HTTP: the development login page is read and
// its form posted back with the browser-binding cookie, as a browser would.
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import type { ClientKind, ListedTool, McpSession, ToolCallResult } from "./mcp-clients.ts";

type Stored = Record<string, unknown>;

/** An OAuth client's memory: its registration, PKCE verifier and tokens, and the last authorization URL it was sent to. */
export class MemoryOAuthClient {
  readonly redirect: string;
  authorizationUrl: URL | undefined;
  #client: Stored | undefined;
  #tokens: Stored | undefined;
  #verifier = "";
  #discovery: Stored | undefined;

  constructor(redirect = "http://127.0.0.1:9/oauth/callback") {
    this.redirect = redirect;
  }

  get redirectUrl(): string {
    return this.redirect;
  }

  get clientMetadata() {
    return {
      client_name: "agent-exec e2e client",
      redirect_uris: [this.redirect],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }

  clientInformation(): Stored | undefined {
    return this.#client;
  }
  saveClientInformation(info: Stored): void {
    this.#client = info;
  }
  tokens(): Stored | undefined {
    return this.#tokens;
  }
  saveTokens(tokens: Stored): void {
    this.#tokens = tokens;
  }
  redirectToAuthorization(url: URL): void {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string): void {
    this.#verifier = verifier;
  }
  codeVerifier(): string {
    return this.#verifier;
  }
  /** Which authorization server the flow under way belongs to (checked again at the callback). */
  saveDiscoveryState(state: Stored): void {
    this.#discovery = state;
  }
  discoveryState(): Stored | undefined {
    return this.#discovery;
  }
  invalidateCredentials(scope: "all" | "client" | "tokens" | "verifier" | "discovery"): void {
    if (scope === "all" || scope === "client") this.#client = undefined;
    if (scope === "all" || scope === "tokens") this.#tokens = undefined;
    if (scope === "all" || scope === "discovery") this.#discovery = undefined;
  }

  /** The access token the client holds (to present it elsewhere in a test). */
  get accessToken(): string {
    const token = this.#tokens?.access_token;
    if (typeof token !== "string") throw new Error("the client holds no access token");
    return token;
  }
}

export type Person = { tenant: string; actor: string; session: string; roles?: string[] };

/** The person at the development login page: reads it, and approves (or denies) as `who`. Resolves the redirect back to the client. */
export async function signInOnDevPage(authorizationUrl: URL, who: Person, decision: "approve" | "deny" = "approve"): Promise<URL> {
  const page = await fetch(authorizationUrl, { redirect: "manual" });
  const html = await page.text();
  if (page.status !== 200) throw new Error(`the login page answered ${page.status}: ${html.slice(0, 500)}`);
  const handle = /name="handle" value="([^"]+)"/.exec(html)?.[1];
  if (!handle) throw new Error(`the login page has no form handle:\n${html.slice(0, 1_000)}`);
  const cookie = page.headers
    .getSetCookie()
    .map((line) => line.split(";")[0])
    .join("; ");
  const form = new URLSearchParams({ handle, decision, tenant: who.tenant, actor: who.actor, session: who.session });
  for (const role of who.roles ?? []) form.append("scope", role);
  if (html.includes('name="scope" value="offline_access"')) form.append("scope", "offline_access");
  const answer = await fetch(new URL("/authorize", authorizationUrl), {
    method: "POST",
    headers: { cookie, "content-type": "application/x-www-form-urlencoded" },
    body: form,
    redirect: "manual",
  });
  const location = answer.headers.get("location");
  if (answer.status !== 302 || !location) throw new Error(`the login form answered ${answer.status}: ${(await answer.text()).slice(0, 500)}`);
  return new URL(location);
}

/**
 * Connects `kind` with nothing but the server's URL and an OAuth client: the first attempt ends
 * in the SDK's UnauthorizedError after it sent the person to /authorize; `who` signs in there;
 * the SDK redeems the code (finishAuth) and the second attempt connects with the token.
 */
export async function connectWithOAuth(kind: ClientKind, url: URL, oauth: MemoryOAuthClient, who: Person): Promise<McpSession> {
  const first = await tryConnect(kind, url, oauth);
  if (first.session) return first.session;
  if (!/unauthori[sz]ed/i.test(String(first.error)) || !oauth.authorizationUrl) throw first.error;
  const callback = await signInOnDevPage(oauth.authorizationUrl, who);
  const code = callback.searchParams.get("code");
  if (!code) throw new Error(`the sign-in came back without a code: ${callback.href}`);
  if (first.transport instanceof TransportV1) await first.transport.finishAuth(code);
  else await first.transport.finishAuth(callback.searchParams);
  const second = await tryConnect(kind, url, oauth);
  if (!second.session) throw second.error;
  return second.session;
}

async function tryConnect(
  kind: ClientKind,
  url: URL,
  oauth: MemoryOAuthClient,
): Promise<{ session?: McpSession; error?: unknown; transport: TransportV1 | TransportV2 }> {
  if (kind === "sdk-1.32 (2025-era)") {
    const transport = new TransportV1(url, { authProvider: oauth as unknown as NonNullable<ConstructorParameters<typeof TransportV1>[1]>["authProvider"] });
    const client = new ClientV1({ name: "agent-exec-tests", version: "1.0.0" });
    try {
      await client.connect(transport);
    } catch (error) {
      return { error, transport };
    }
    return { transport, session: sessionOf(client) };
  }
  const transport = new TransportV2(url, { authProvider: oauth as unknown as NonNullable<ConstructorParameters<typeof TransportV2>[1]>["authProvider"] });
  const client = new ClientV2({ name: "agent-exec-tests", version: "2.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  try {
    await client.connect(transport);
  } catch (error) {
    return { error, transport };
  }
  return { transport, session: sessionOf(client) };
}

function sessionOf(client: ClientV1 | ClientV2): McpSession {
  return {
    listTools: async () => (await client.listTools()).tools as ListedTool[],
    callTool: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolCallResult,
    close: () => client.close(),
  };
}
