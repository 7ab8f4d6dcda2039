import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIENCE, type LocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient } from "../helpers/mcp-clients.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await sharedServer();
});
afterAll(async () => {
  await server?.stop();
});

const CODE = "export default () => 'ok'";

describe.each(CLIENT_KINDS)("authentication with %s", (kind) => {
  it.each([
    ["no token", async () => undefined],
    ["an expired token", async () => server.token({ tenant: "acme", actor: "alice", ttlSeconds: -120 })],
    ["a token for another audience", async () => server.token({ tenant: "acme", actor: "alice", audience: `${AUDIENCE}-elsewhere` })],
    ["a token from another issuer", async () => server.token({ tenant: "acme", actor: "alice", issuer: "https://evil.example" })],
    ["a token that is not a JWT", async () => "garbage"],
  ])("refuses tools/call with %s (HTTP 401) and runs nothing", async (_case, makeToken) => {
    const token = await makeToken();
    const call = async () => {
      const session = await connectClient(kind, server.mcpUrl, token);
      try {
        return await session.callTool("analyze_readonly", { code: CODE });
      } finally {
        await session.close();
      }
    };
    await expect(call()).rejects.toThrow(/401|unauthori[sz]ed|invalid_token/i);
  });
});

describe("authentication over raw HTTP", () => {
  it.each([
    ["an expired token", () => server.token({ tenant: "acme", actor: "alice", ttlSeconds: -120 }), /expired/],
    ["a token for another audience", () => server.token({ tenant: "acme", actor: "alice", audience: "other" }), /audience/],
  ])("answers %s with 401, a Bearer challenge and a typed body", async (_case, makeToken, message) => {
    const response = await fetch(server.mcpUrl, {
      method: "POST",
      headers: { authorization: `Bearer ${await makeToken()}`, "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "tools/list", params: {} }),
    });
    expect(response.status).toBe(401);
    expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="agent-exec", error="invalid_token"/);
    const body = (await response.json()) as { error: { code: string; message: string; hint: string } };
    expect(body.error.code).toBe("invalid_token");
    expect(body.error.message).toMatch(message);
  });
});

describe("OAuth discovery (RFC 9728), as a client that has only the server's URL finds it", () => {
  it("answers a tools/call without a token with 401 pointing at the protected resource metadata, which names this very endpoint", async () => {
    const response = await fetch(server.mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "tools/call",
        params: { name: "analyze_readonly", arguments: { code: "export default () => 1" } },
      }),
    });
    expect(response.status).toBe(401);
    const challenge = response.headers.get("www-authenticate") ?? "";
    const metadataUrl = /resource_metadata="([^"]+)"/.exec(challenge)?.[1];
    expect(metadataUrl).toBe(`${server.url}/.well-known/oauth-protected-resource/mcp`);
    const metadata = await fetch(metadataUrl ?? "");
    expect(metadata.status).toBe(200);
    expect(await metadata.json()).toMatchObject({ resource: server.mcpUrl.href, bearer_methods_supported: ["header"] });
  });
});

describe("evidence access", () => {
  const read = (sid: string, token?: string) =>
    fetch(`${server.url}/v1/sessions/${sid}/evidence`, { headers: token ? { authorization: `Bearer ${token}` } : {} });

  beforeAll(async () => {
    const session = await connectClient(CLIENT_KINDS[0], server.mcpUrl, await server.token({ tenant: "acme", actor: "alice", session: "s-shared-name" }));
    await session.callTool("analyze_readonly", { code: CODE });
    await session.close();
  });

  it("serves the session to its own token", async () => {
    const response = await read("s-shared-name", await server.token({ tenant: "acme", actor: "alice", session: "s-shared-name" }));
    expect(response.status).toBe(200);
    const body = (await response.json()) as { records: Array<{ kind: string; actor: string }> };
    expect(body.records.map((r) => [r.kind, r.actor])).toEqual([
      ["run.started", "alice"],
      ["run.finished", "alice"],
    ]);
  });

  it("answers another tenant's token with 404, even for the same session id", async () => {
    const response = await read("s-shared-name", await server.token({ tenant: "globex", actor: "eve", session: "s-shared-name", roles: ["auditor"] }));
    expect(response.status).toBe(404);
  });

  it("answers no token with 401", async () => {
    expect((await read("s-shared-name")).status).toBe(401);
  });
});
