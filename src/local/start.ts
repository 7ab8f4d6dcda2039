// `npm start`: the local embedded default. Validates the contracts and policy, makes sure
// the local keys exist, runs the Worker on workerd (wrangler dev, on an internal port) with
// Durable Object storage persisted under the state folder, and serves PORT through the
// supervisor (supervisor.ts), which restarts the runtime when a run wedges or crashes it.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { createServer } from "node:net";
import { delimiter, dirname, join } from "node:path";
import { PAUSING_BREAKS, type TurnstileLimits } from "../budget/turnstile.ts";
import { readTurnstileLimits } from "../config/config.ts";
import { loadContracts } from "../contracts/load-contracts.ts";
import { buildCatalog, CONTRACTS_DIR, catalogOverride, readDataFiles } from "./build-catalog.ts";
import { buildViewer } from "./build-viewer.ts";
import { ensureKey, ROOT, stateDir } from "./dev-keys.ts";
import { Supervisor } from "./supervisor.ts";

/** Configuration variables an operator may set in the shell; forwarded to the Worker as-is. */
const FORWARDED_VARS = /^(AUTH_|MCP_|TASK_|EVIDENCE_|EGRESS_|TRACKER_|METRICS_|TURN_|SLOT_RESERVE_|LOCAL_BENCH$)/;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

async function waitUntilServing(url: string, child: ChildProcess, deadlineMs: number): Promise<boolean> {
  const until = Date.now() + deadlineMs;
  while (Date.now() < until && child.exitCode === null) {
    try {
      if ((await fetch(url, { signal: AbortSignal.timeout(1_000) })).ok) return true;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 150));
  }
  return false;
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8787);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) fail(`PORT must be a TCP port number (got "${process.env.PORT}").`);
  const dir = stateDir();

  const catalog = buildCatalog();
  if (!catalog.ok) fail(`Contracts or policy are invalid; the server was not started.\n${catalog.message}`);
  // wrangler's [build] step builds it too; doing it here first makes a broken viewer fail fast and clearly.
  await buildViewer().catch((error: unknown) => fail(`The evidence viewer could not be built; the server was not started.\n${String(error)}`));
  const identity = await ensureKey("identity", dir);
  const taskSigning = await ensureKey("taskSigning", dir);
  const planner = await ensureKey("planner", dir);
  const evidenceSigning = await ensureKey("evidenceSigning", dir);

  // The local keys, unless the shell sets the same variable (then the shell wins).
  const local: Record<string, string> = {
    AUTH_DEV_PUBLIC_JWK: JSON.stringify(identity.publicJwk),
    TASK_SIGNING_KEY: JSON.stringify(taskSigning.privateJwk),
    TASK_PLANNERS: JSON.stringify([{ id: "local-planner", tenants: ["*"], jwk: planner.publicJwk }]),
    EVIDENCE_SIGNING_KEY: JSON.stringify(evidenceSigning.privateJwk),
  };
  const forwarded = Object.entries(process.env).filter((entry): entry is [string, string] => FORWARDED_VARS.test(entry[0]) && entry[1] !== undefined);
  // A fresh token per start: only this supervisor may ask the Worker to close lost runs.
  const supervisorToken = randomBytes(32).toString("base64url");
  // Other folders than the bundled ones reach the Worker as one variable (the bundle is shared).
  const override = catalogOverride();
  const vars = Object.entries({
    ...local,
    ...Object.fromEntries(forwarded),
    LOCAL_SUPERVISOR_TOKEN: supervisorToken,
    ...(override ? { CATALOG_OVERRIDE: override } : {}),
  }).map(([name, value]) => `${name}:${value}`);
  const internalPort = await freePort();
  const args = [
    join(ROOT, "node_modules/wrangler/bin/wrangler.js"),
    "dev",
    "--config",
    join(ROOT, "wrangler.toml"),
    "--ip",
    "127.0.0.1",
    "--port",
    String(internalPort),
    "--persist-to",
    join(dir, "wrangler"),
    "--show-interactive-dev-session=false",
    ...vars.flatMap((v) => ["--var", v]),
  ];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
    // wrangler's [build] command runs `node`: make it this Node (22), not whatever else is on PATH.
    // wrangler's own request tracing (its local explorer's trace store) is off unless asked for: it writes every
    // invocation, each Durable Object call included, to SQLite on the runtime's thread (BENCHMARKS.md, session 6).
    env: {
      X_LOCAL_OBSERVABILITY: "false",
      ...process.env,
      PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`,
      WRANGLER_SEND_METRICS: "false",
    },
  });
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.on(signal, () => {
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5_000).unref();
    });
  }
  child.on("exit", (code, signal) => process.exit(code ?? (signal ? 0 : 1)));

  const turns = turnstileLimits();
  const contracts = loadContracts(readDataFiles(CONTRACTS_DIR).files);
  if (!contracts.ok) fail("Contracts changed while starting; start again.");
  const supervisor = new Supervisor({
    port,
    upstreamPort: internalPort,
    wranglerPid: child.pid ?? 0,
    // a delayed call may wait for a budget slot before its wall clock starts, and any call may pause at its breaks (Turns)
    tools: new Map(
      contracts.contracts.map((c) => [
        c.tool,
        {
          contractId: c.id,
          wallMs: c.limits.wallMs + (c.backpressure.mode === "delay" ? c.backpressure.maxWaitMs : 0) + PAUSING_BREAKS * turns.maxPauseMs,
        },
      ]),
    ),
    token: supervisorToken,
    tenantClaim: process.env.AUTH_TENANT_CLAIM ?? "tenant",
    turns,
    log: (line) => process.stderr.write(`[supervisor] ${line}\n`),
  });
  // The runtime's output passes through; an out-of-memory abort is noted so lost runs say so.
  for (const [stream, sink] of [
    [child.stdout, process.stdout],
    [child.stderr, process.stderr],
  ] as const) {
    stream?.on("data", (chunk: Buffer) => {
      if (/heap out of memory|Reached heap limit/.test(chunk.toString())) supervisor.noteOutOfMemory();
      sink.write(chunk);
    });
  }
  await supervisor.listen();

  const base = `http://127.0.0.1:${port}`;
  if (await waitUntilServing(`${base}/`, child, 60_000)) {
    process.stdout.write(`\nagent-exec is serving MCP at ${base}/mcp (state: ${dir})\n`);
  }
}

main().catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));

/** The Worker's TURN_* limits, read here as the Worker reads them (a bad value stops the start). */
function turnstileLimits(): TurnstileLimits {
  try {
    return readTurnstileLimits(process.env);
  } catch (error) {
    fail(`${(error as Error).message} The server was not started.`);
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
    });
  });
}
