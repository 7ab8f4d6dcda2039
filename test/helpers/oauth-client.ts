// The OAuth side of the two real MCP clients: an in-memory OAuthClientProvider (what a
// desktop client keeps on disk) handed to each SDK's own transport, which then discovers the
// authorization server from the 401, registers, sends the person to /authorize with PKCE and
// redeems the code. The person is played over HTTP by a small browser (cookies per origin,
// redirects, forms): the development login page, or the consent page and an upstream
// OpenID Connect provider's own pages.
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

/** A person at a browser, as far as a sign-in needs one: cookies per origin, redirects followed, forms posted. */
export class HttpBrowser {
  readonly #jar = new Map<string, Map<string, string>>();

  /** Goes to `url` and follows redirects until a page answers, or until the next hop is `stopAt`'s (the client's redirect URI): that URL is returned unvisited. */
  async go(url: URL, init: RequestInit = {}, stopAt?: string): Promise<{ url: URL; status: number; html: string; headers: Headers }> {
    let at = url;
    let request = init;
    for (let hop = 0; hop < 20; hop++) {
      if (stopAt && at.href.startsWith(stopAt)) return { url: at, status: 0, html: "", headers: new Headers() };
      const headers = new Headers(request.headers);
      const cookies = this.#jar.get(at.origin);
      if (cookies?.size) headers.set("cookie", [...cookies].map(([name, value]) => `${name}=${value}`).join("; "));
      const response = await fetch(at, { ...request, headers, redirect: "manual" });
      this.#keep(at.origin, response.headers.getSetCookie());
      const location = response.headers.get("location");
      if (response.status >= 300 && response.status < 400 && location) {
        await response.body?.cancel();
        at = new URL(location, at);
        request = {};
        continue;
      }
      return { url: at, status: response.status, html: await response.text(), headers: response.headers };
    }
    throw new Error(`more than 20 redirects from ${url.href}`);
  }

  /** Submits the page's first form (its hidden fields, then `fields`; repeated names in `fields` as arrays). */
  async submit(page: { url: URL; html: string }, fields: Record<string, string | string[]>, stopAt?: string) {
    const form = /<form[^>]*action="([^"]*)"[^>]*>([\s\S]*?)<\/form>/i.exec(page.html);
    if (!form) throw new Error(`no form on ${page.url.href}:\n${page.html.slice(0, 1_000)}`);
    const body = new URLSearchParams();
    for (const [, name, value] of (form[2] ?? "").matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) {
      if (name && !(name in fields)) body.append(name, decodeEntities(value ?? ""));
    }
    for (const [name, value] of Object.entries(fields)) for (const one of Array.isArray(value) ? value : [value]) body.append(name, one);
    const action = new URL(decodeEntities(form[1] ?? ""), page.url);
    return await this.go(action, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body }, stopAt);
  }

  #keep(origin: string, lines: string[]): void {
    const cookies = this.#jar.get(origin) ?? new Map<string, string>();
    for (const line of lines) {
      const [pair = "", ...attributes] = line.split(";");
      const [name = "", ...rest] = pair.split("=");
      const expired = attributes.some((attribute) => /^\s*max-age=0\s*$/i.test(attribute) || /^\s*expires=Thu, 01 Jan 1970/i.test(attribute));
      if (expired) cookies.delete(name.trim());
      else cookies.set(name.trim(), rest.join("=").trim());
    }
    this.#jar.set(origin, cookies);
  }
}

function decodeEntities(text: string): string {
  return text.replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code))).replaceAll("&amp;", "&");
}

/** How the person gets through /authorize: resolves the redirect back to the client. */
export type SignIn = (authorizationUrl: URL, redirectUri: string) => Promise<URL>;

/** The person at the development login page, approving (or denying) as `who`. */
export function devSignIn(who: Person, decision: "approve" | "deny" = "approve"): SignIn {
  return async (authorizationUrl, redirectUri) => {
    const browser = new HttpBrowser();
    const page = await browser.go(authorizationUrl);
    if (page.status !== 200) throw new Error(`the login page answered ${page.status}: ${page.html.slice(0, 500)}`);
    const back = await browser.submit(
      page,
      {
        decision,
        tenant: who.tenant,
        actor: who.actor,
        session: who.session,
        scope: [...(who.roles ?? []), ...(page.html.includes('value="offline_access"') ? ["offline_access"] : [])],
      },
      redirectUri,
    );
    if (back.status !== 0) throw new Error(`the login form answered ${back.status}: ${back.html.slice(0, 500)}`);
    return back.url;
  };
}

/** As devSignIn, for a test that drives /authorize itself. */
export async function signInOnDevPage(authorizationUrl: URL, who: Person, decision: "approve" | "deny" = "approve"): Promise<URL> {
  return await devSignIn(who, decision)(authorizationUrl, new URLSearchParams(authorizationUrl.search).get("redirect_uri") ?? "");
}

/**
 * Connects `kind` with nothing but the server's URL and an OAuth client: the first attempt ends
 * in the SDK's UnauthorizedError after it sent the person to /authorize; `who` signs in there;
 * the SDK redeems the code (finishAuth) and the second attempt connects with the token.
 */
export async function connectWithOAuth(kind: ClientKind, url: URL, oauth: MemoryOAuthClient, signIn: SignIn): Promise<McpSession> {
  const first = await tryConnect(kind, url, oauth);
  if (first.session) return first.session;
  if (!/unauthori[sz]ed/i.test(String(first.error)) || !oauth.authorizationUrl) throw first.error;
  const callback = await signIn(oauth.authorizationUrl, oauth.redirect);
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
