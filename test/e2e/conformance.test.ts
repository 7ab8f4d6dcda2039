// The MCP project's own conformance suite, run as a real client would: the CLI
// connects to the local server with no token and no special configuration.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, ROOT } from "../helpers/local-server.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await sharedServer();
});
afterAll(async () => {
  await server?.stop();
});

describe("MCP conformance (@modelcontextprotocol/conformance)", () => {
  it.each(["server-initialize", "ping", "tools-list", "dns-rebinding-protection"])("passes the %s scenario", (scenario) => {
    const cli = join(ROOT, "node_modules/@modelcontextprotocol/conformance/dist/index.js");
    const output = mkdtempSync(join(tmpdir(), "agent-exec-conformance-"));
    const result = spawnSync(process.execPath, [cli, "server", "--url", server.mcpUrl.href, "--scenario", scenario, "-o", output], {
      cwd: ROOT,
      encoding: "utf8",
      timeout: 60_000,
    });
    const report = `${result.stdout}\n${result.stderr}`;
    expect(result.status, report).toBe(0);
    expect(report).toMatch(/Passed: (\d+)\/\1, 0 failed/);
  });
});
