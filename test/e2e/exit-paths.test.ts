// Every way `npm start` ends leaves no process behind: a port in use (before any runtime
// starts), a Worker that does not build, SIGTERM and SIGINT to it or to npm, SIGKILL of npm,
// and SIGKILL of the supervisor alone (its wranglers notice they are orphans and go, with
// their workerd).
import { spawn, spawnSync } from "node:child_process";
import { appendFileSync, cpSync, mkdtempSync, symlinkSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { alive, descendants, processTable } from "../../src/local/process-table.ts";
import { freePort, newStateDir, ROOT, startLocalServer, until } from "../helpers/local-server.ts";

/** Every process under `pid` (not `pid` itself). */
function descendantsOf(pid: number): number[] {
  return [...descendants(processTable(), [pid])].filter((found) => found !== pid);
}

describe("exit paths of npm start", () => {
  it("stops at once on a port in use, names the port and PORT, and leaves no process behind", async () => {
    const taken = createServer();
    const port = await freePort();
    await new Promise<void>((resolve) => taken.listen(port, "127.0.0.1", () => resolve()));
    try {
      const stateDir = newStateDir();
      const result = spawnSync(process.execPath, [join(ROOT, "src/local/start.ts")], {
        cwd: ROOT,
        env: { ...process.env, PORT: String(port), STATE_DIR: stateDir },
        encoding: "utf8",
        timeout: 60_000,
      });
      expect(result.status).toBe(1);
      expect(result.stderr.trim().split("\n")).toEqual([`Port ${port} is in use: start on a free one with PORT=<port> npm start. The server was not started.`]);
      const left = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" })
        .stdout.split("\n")
        .filter((line) => line.includes(stateDir));
      expect(left).toEqual([]);
    } finally {
      taken.close();
    }
  });

  it("stops with the build's error, where it is, when the Worker does not build (no restart loop), and leaves no process behind", async () => {
    // a copy of what npm start reads, with a syntax error in the Worker
    const copy = mkdtempSync(join(tmpdir(), "agent-exec-broken-"));
    for (const entry of [
      "src",
      "contracts",
      "connectors",
      "policy",
      "package.json",
      "wrangler.toml",
      "tsconfig.json",
      "tsconfig.base.json",
      "worker-configuration.d.ts",
    ]) {
      cpSync(join(ROOT, entry), join(copy, entry), { recursive: true });
    }
    symlinkSync(join(ROOT, "node_modules"), join(copy, "node_modules"));
    appendFileSync(join(copy, "src/routes.ts"), "\nexport const broken = ;\n");
    const stateDir = newStateDir();
    const startedAt = Date.now();
    const result = spawnSync(process.execPath, [join(copy, "src/local/start.ts")], {
      cwd: copy,
      env: { ...process.env, PORT: String(await freePort()), STATE_DIR: stateDir },
      encoding: "utf8",
      timeout: 120_000,
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/src\/routes\.ts:\d+:\d+:/);
    expect(result.stderr).toContain("its Worker did not build");
    expect(Date.now() - startedAt).toBeLessThan(60_000);
    const left = spawnSync("ps", ["-eo", "args"], { encoding: "utf8" })
      .stdout.split("\n")
      .filter((line) => line.includes(stateDir));
    expect(left).toEqual([]);
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it(`ends every runtime process on ${signal} to npm start`, async () => {
      const server = await startLocalServer();
      const processes = descendantsOf(server.pid);
      expect(processes.length).toBeGreaterThanOrEqual(4); // a wrangler and its workerd per runtime
      process.kill(server.pid, signal);
      await until(`every process of the stack to end after ${signal}`, async () => (processes.every((pid) => !alive(pid)) ? true : undefined), 30_000);
      await server.stop();
    });
  }

  for (const signal of ["SIGTERM", "SIGKILL"] as const) {
    it(`ends start.ts and every runtime process on ${signal} to the npm process of npm start`, async () => {
      const port = await freePort();
      const npm = spawn("npm", ["start"], { cwd: ROOT, env: { ...process.env, PORT: String(port), STATE_DIR: newStateDir() }, stdio: "ignore" });
      try {
        await until("npm start to serve", async () => ((await fetch(`http://127.0.0.1:${port}/`).catch(() => null))?.ok ? true : undefined), 90_000);
        const processes = descendantsOf(npm.pid ?? 0);
        expect(processes.length).toBeGreaterThanOrEqual(5); // start.ts, and a wrangler and its workerd per runtime
        npm.kill(signal);
        await until(`every process under npm to end after ${signal}`, async () => (processes.every((pid) => !alive(pid)) ? true : undefined), 30_000);
      } finally {
        if (npm.exitCode === null) npm.kill("SIGKILL");
      }
    });
  }

  it("ends every runtime process when the supervisor alone is SIGKILLed", async () => {
    const server = await startLocalServer();
    const processes = descendantsOf(server.pid);
    process.kill(server.pid, "SIGKILL");
    await until("the orphaned runtimes to end", async () => (processes.every((pid) => !alive(pid)) ? true : undefined), 30_000);
    await server.stop();
  });
});
