// Starts the server exactly as `npm start` does (src/local/start.ts on a free
// loopback port, its own state folder) and stops it again.
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ensureDevKey } from "../../src/local/dev-keys.ts";
import { mintToken, type TokenRequest } from "../../src/local/mint-token.ts";

export const ROOT = resolve(import.meta.dirname, "../..");
export const ISSUER = "agent-exec-local";
export const AUDIENCE = "agent-exec";

export async function freePort(): Promise<number> {
  return await new Promise((done, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? done(address.port) : fail(new Error("no port"))));
    });
  });
}

export function newStateDir(): string {
  return mkdtempSync(join(tmpdir(), "agent-exec-test-"));
}

export type LocalServer = {
  url: string;
  /** The `npm start` process (src/local/start.ts): the supervisor. */
  pid: number;
  mcpUrl: URL;
  stateDir: string;
  output: () => string;
  token: (request: Omit<TokenRequest, "key" | "issuer" | "audience"> & Partial<Pick<TokenRequest, "issuer" | "audience">>) => Promise<string>;
  stop: () => Promise<void>;
  /** Kills the whole local stack at once (supervisor, wrangler, workerd) with SIGKILL: nothing gets to clean up. */
  kill: () => Promise<void>;
};

/** Waits on a condition with a deadline; no fixed sleeps. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}

export async function startLocalServer(options: { stateDir?: string; env?: Record<string, string> } = {}): Promise<LocalServer> {
  const port = await freePort();
  const stateDir = options.stateDir ?? newStateDir();
  let output = "";
  const child: ChildProcess = spawn(process.execPath, [join(ROOT, "src/local/start.ts")], {
    cwd: ROOT,
    env: { ...process.env, PORT: String(port), STATE_DIR: stateDir, ...options.env },
    stdio: ["ignore", "pipe", "pipe"],
    // its own process group, so kill() reaches every process of the stack
    detached: true,
  });
  // SERVER_LOG_DIR keeps each server's output in a file as it comes (for looking into a failure)
  const logFile = process.env.SERVER_LOG_DIR ? join(process.env.SERVER_LOG_DIR, `server-${port}.log`) : null;
  const collect = (chunk: Buffer) => {
    output += chunk;
    if (logFile) appendFileSync(logFile, chunk);
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await until(
      "the server to serve",
      async () => {
        if (child.exitCode !== null) throw new Error(`server exited ${child.exitCode}:\n${output}`);
        return (await fetch(`${url}/`)).ok ? true : undefined;
      },
      90_000,
    );
  } catch (error) {
    if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
    throw new Error(
      `${error instanceof Error ? error.message : String(error)}\n--- the server's output, last 4000 characters ---\n${output.slice(-4_000)}${runtimeOutputs(stateDir)}`,
    );
  }
  const key = await ensureDevKey(stateDir);
  return {
    url,
    pid: child.pid ?? 0,
    mcpUrl: new URL(`${url}/mcp`),
    stateDir,
    output: () => output,
    token: async (request) => (await mintToken({ key, issuer: ISSUER, audience: AUDIENCE, ...request })).token,
    stop: async () => {
      if (child.exitCode === null) {
        child.kill("SIGTERM");
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null) child.kill("SIGKILL");
      }
      await exited;
    },
    kill: async () => {
      if (child.pid !== undefined && child.exitCode === null) process.kill(-child.pid, "SIGKILL");
      await exited;
    },
  };
}

/** The end of each runtime process's own output (STATE_DIR/runtime/<name>/output.log), for a server that did not start. */
function runtimeOutputs(stateDir: string): string {
  const dir = join(stateDir, "runtime");
  if (!existsSync(dir)) return "";
  return readdirSync(dir)
    .filter((name) => existsSync(join(dir, name, "output.log")))
    .map((name) => `\n--- ${name}, last 1500 characters ---\n${readFileSync(join(dir, name, "output.log"), "utf8").slice(-1_500)}`)
    .join("");
}
