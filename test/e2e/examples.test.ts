import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type LocalServer, ROOT, startLocalServer } from "../helpers/local-server.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await sharedServer();
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

  it("tracker.ts exits 1 and says why against a server started without the tracker's settings", async () => {
    const result = spawnSync(
      process.execPath,
      [join(ROOT, "examples/tracker.ts"), "--url", server.url, "--tracker-port", String(await freePort()), "--tracker-token", "example-token"],
      { cwd: ROOT, env: { ...process.env, STATE_DIR: server.stateDir }, encoding: "utf8", timeout: 60_000 },
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/The run did not reach the tracker \(/);
  });

  it("tracker.ts comments and labels through env.TRACKER against a local tracker, and shows the evidence", async () => {
    const trackerPort = await freePort();
    const withTracker = await startLocalServer({
      env: { EGRESS_TRACKER_TOKEN: "example-token", EGRESS_RESOLVE: JSON.stringify({ "tracker.example.com": `http://127.0.0.1:${trackerPort}` }) },
    });
    try {
      const result = spawnSync(
        process.execPath,
        [join(ROOT, "examples/tracker.ts"), "--url", withTracker.url, "--tracker-port", String(trackerPort), "--tracker-token", "example-token"],
        { cwd: ROOT, env: { ...process.env, STATE_DIR: withTracker.stateDir }, encoding: "utf8", timeout: 60_000 },
      );
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toMatch(/^run run_\S+: completed .*"labels":\["triaged","inventory"\]/m);
      expect(result.stdout).toContain(
        'tracker received: {"id":"OPS-42","comments":["Triaged: inventory timeouts since 09:10, see runbook."],"labels":["triaged","inventory"]}',
      );
      expect(result.stdout).toMatch(/^evidence: egress POST https:\/\/tracker\.example\.com:443 allowed 201 injected=authorization drift=false$/m);
      expect(result.stdout).toContain("evidence: capability tracker.label allowed");
      expect(result.stdout).not.toContain("example-token");
      expect(result.stdout).not.toContain("example-notes-token");
    } finally {
      await withTracker.stop();
    }
  });

  it("connector.ts triages an issue through ctx.env.issues (a connector file, granted by the example's contract), and shows each operation in the evidence", async () => {
    const trackerPort = await freePort();
    const notesPort = await freePort();
    const demo = join(ROOT, "examples/connector-demo");
    const withConnector = await startLocalServer({
      env: {
        CONTRACTS_DIR: join(demo, "contracts"),
        CONNECTORS_DIR: join(demo, "connectors"),
        POLICY_DIR: join(demo, "policy"),
        EGRESS_TRACKER_TOKEN: "example-token",
        EGRESS_NOTES_TOKEN: "example-notes-token",
        EGRESS_RESOLVE: JSON.stringify({ "tracker.example.com": `http://127.0.0.1:${trackerPort}`, "notes.example.com": `http://127.0.0.1:${notesPort}` }),
      },
    });
    try {
      const result = spawnSync(
        process.execPath,
        [
          join(ROOT, "examples/connector.ts"),
          ...["--url", withConnector.url, "--tracker-port", String(trackerPort), "--tracker-token", "example-token"],
          ...["--notes-port", String(notesPort), "--notes-token", "example-notes-token"],
        ],
        { cwd: ROOT, env: { ...process.env, STATE_DIR: withConnector.stateDir }, encoding: "utf8", timeout: 60_000 },
      );
      expect(result.status, result.stderr).toBe(0);
      expect(result.stdout).toContain("declare const issues: {");
      expect(result.stdout).toContain("declare const notes: {");
      expect(result.stdout).toMatch(/^run run_\S+: completed \{"before":0,"after":\["triaged","inventory"\],"runbooks":\["INV-7","INV-9"\]\}$/m);
      expect(result.stdout).toContain(
        'tracker received: {"id":"OPS-42","comments":["Triaged from 2 notes; runbooks: INV-7, INV-9"],"labels":["triaged","inventory"]}',
      );
      expect(result.stdout.match(/^evidence: .*$/gm)).toEqual([
        "evidence: connector:issues getIssue allowed 200",
        "evidence: connector:notes searchNotes allowed 200",
        "evidence: connector:issues addComment allowed 201",
        "evidence: connector:issues addLabels allowed 200",
        "evidence: connector:issues getIssue allowed 200",
      ]);
      expect(result.stdout).not.toContain("example-token");
      expect(result.stdout).not.toContain("example-notes-token");
    } finally {
      await withConnector.stop();
    }
  });

  it.each(["claude-code.mcp.json", "claude-desktop-config.json"])("%s is valid JSON pointing at the local /mcp endpoint", (file) => {
    const text = readFileSync(join(ROOT, "examples", file), "utf8");
    const config = JSON.parse(text) as { mcpServers: Record<string, unknown> };
    expect(Object.keys(config.mcpServers)).toEqual(["agent-exec"]);
    expect(text).toContain("http://127.0.0.1:8787/mcp");
    expect(text).toMatch(/Bearer /);
  });
});
