import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, ROOT, startLocalServer } from "../helpers/local-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await startLocalServer();
});
afterAll(async () => {
  await server?.stop();
});

describe("examples", () => {
  it("agent.ts gets a token, lists tools, runs code and prints the session's evidence", () => {
    const result = spawnSync(process.execPath, [join(ROOT, "examples/agent.ts"), "--url", server.mcpUrl.href], {
      cwd: ROOT,
      env: { ...process.env, STATE_DIR: server.stateDir },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/tool analyze_readonly: readOnly=true destructive=false/);
    expect(result.stdout).toContain('result {"INFO":3,"WARN":1,"ERROR":1} logs [{"level":"log","message":"analysed 5 lines"}]');
    expect(result.stdout).toContain("privileged refused: approval_required");
    expect(result.stdout.match(/^evidence #\d+ run\.(started|finished)/gm)).toHaveLength(4);
    expect(result.stdout).toMatch(/evidence #2 run\.finished read-only-analysis run_\S+ completed start=\d+ms total=\d+ms/);
  });

  it("planner.ts signs a task with the local planner key, runs it over POST /v1/tasks, and is refused on replay", () => {
    const result = spawnSync(process.execPath, [join(ROOT, "examples/planner.ts"), "--url", server.url], {
      cwd: ROOT,
      env: { ...process.env, STATE_DIR: server.stateDir },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(result.status, result.stderr).toBe(0);
    expect(result.stdout).toMatch(/^HTTP 200 completed result=\{"openIncidents":2\} policy=[0-9a-f]{64}$/m);
    expect(result.stdout).toMatch(/^replay: HTTP 403 .*task_replayed/m);
  });

  it.each(["claude-code.mcp.json", "claude-desktop-config.json"])("%s is valid JSON pointing at the local /mcp endpoint", (file) => {
    const text = readFileSync(join(ROOT, "examples", file), "utf8");
    const config = JSON.parse(text) as { mcpServers: Record<string, unknown> };
    expect(Object.keys(config.mcpServers)).toEqual(["agent-exec"]);
    expect(text).toContain("http://127.0.0.1:8787/mcp");
    expect(text).toMatch(/Bearer /);
  });
});
