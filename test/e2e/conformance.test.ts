// The MCP project's own conformance suite, run as a real client would. Every MCP request needs
// a token, and the CLI has no option to send one: it connects through a bridge that adds a
// bearer token to each request and changes nothing else (Host and Origin pass through, so
// the DNS-rebinding scenario still reaches the server's own check).
import { spawn } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type AuthProxy, authenticatingProxy } from "../helpers/auth-proxy.ts";
import { type LocalServer, ROOT } from "../helpers/local-server.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
let proxy: AuthProxy;
beforeAll(async () => {
  server = await sharedServer();
  proxy = await authenticatingProxy(server.url, await server.token({ tenant: "acme", actor: "conformance", ttlSeconds: 3600 }));
});
afterAll(async () => {
  await proxy?.close();
  await server?.stop();
});

/** Runs the conformance CLI without blocking this process (the bridge answers from it). */
function conformance(url: string, scenario: string): Promise<{ status: number | null; report: string }> {
  const cli = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
  const output = mkdtempSync(join(tmpdir(), "agent-exec-conformance-"));
  const child = spawn(process.execPath, [cli, "server", "--url", url, "--scenario", scenario, "-o", output], { cwd: ROOT });
  let report = "";
  child.stdout.on("data", (chunk) => {
    report += chunk;
  });
  child.stderr.on("data", (chunk) => {
    report += chunk;
  });
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  return new Promise((done) =>
    child.on("close", (status) => {
      clearTimeout(timer);
      done({ status, report });
    }),
  );
}

describe("MCP conformance (@modelcontextprotocol/conformance)", () => {
  it.each(["server-initialize", "ping", "tools-list", "dns-rebinding-protection"])("passes the %s scenario with a token", async (scenario) => {
    const { status, report } = await conformance(proxy.url("/mcp").href, scenario);
    expect(status, report).toBe(0);
    expect(report).toMatch(/Passed: (\d+)\/\1, 0 failed/);
  });

  it("gets nowhere without the token: the CLI straight at the server fails server-initialize", async () => {
    const { status, report } = await conformance(server.mcpUrl.href, "server-initialize");
    expect(status, report).not.toBe(0);
    expect(report).toMatch(/401|unauthori[sz]ed/i);
  });
});
