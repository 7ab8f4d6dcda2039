// `npm start`: the local embedded default. Validates the contracts and policy, makes sure
// the local keys exist, and runs the platform as separate processes under the supervisor
// (supervisor.ts): the main runtime (the Worker: MCP, routes, Durable Objects, evidence) and
// SANDBOX_PROCESSES sandbox runtimes (the dynamic workers, the egress gateway, the
// capabilities), each a `wrangler dev` of its own, so a runaway stalls only its sandbox
// process. Secrets reach the runtimes through files only this user can read.
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { buildCatalog, CONNECTORS_DIR, CONTRACTS_DIR, catalogOverride, checkCatalog, POLICY_DIR } from "./build-catalog.ts";
import { buildViewer } from "./build-viewer.ts";
import { watchData } from "./data-watch.ts";
import { ensureKey, hasKey, LOCAL_KEYS, type LocalKeyName, stateDir } from "./dev-keys.ts";
import { writeRuntimeConfigs, writeVars } from "./runtime-configs.ts";
import { type Loss, RuntimeProcess, runtimePath, sleep } from "./runtime-process.ts";
import { Supervisor } from "./supervisor.ts";

/** Configuration variables an operator may set in the shell; passed to the runtimes in their private .dev.vars. */
const FORWARDED_VARS = /^(AUTH_|OAUTH_|MCP_|TASK_|EVIDENCE_|EGRESS_|TRACKER_|METRICS_|SLOT_RESERVE_|LOCAL_BENCH$)/;
/** What the sandbox processes do not get: they sign nothing, serve no routes and hold no tokens. */
const MAIN_ONLY_VARS =
  /^(TASK_SIGNING_KEY|TASK_SIGNING_PREVIOUS_KEYS|TASK_PLANNERS|EVIDENCE_SIGNING_KEY|EVIDENCE_SIGNING_PREVIOUS_KEYS|METRICS_TOKEN|CATALOG_OVERRIDE|OAUTH_\w+|LOCAL_WATCHDOG_\w+)$/;
/**
 * A runtime's output lines worth passing on: errors, warnings, crashes, the Worker's own
 * events and where a build error is (file:line:column). The rest (wrangler's banners, binding tables, request lines) is in the runtime's
 * output.log; LOCAL_VERBOSE=1 passes the main runtime's output through as it comes.
 */
const WORTH_SHOWING = /ERROR|WARNING|✘|▲|crash|heap|Fatal|"event"|\.m?[jt]s:\d+:\d+:/i;
/** What wrangler prints when it cannot reach Cloudflare (offline): said once, in one line, instead. */
const OFFLINE_NOISE = /getaddrinfo|ENOTFOUND|EAI_AGAIN|Request\.cf|^\s+at |types might be out of date/;
/** Between starting one runtime process and the next: two started at the same instant can clash on a socket. */
const STAGGER_MS = 400;

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

/**
 * How many sandbox processes: one per core, at least three (a runaway's process is out of use
 * for its deadline and the restart after it, so a second runaway right after it needs another,
 * and everyone else a third), at most four by default. 0 runs every sandbox inside the main
 * runtime through the Worker's own SandboxHost entrypoint, exactly as deployed (a runaway then
 * stalls the whole local runtime): the shape `npm run bench` measures beside the default.
 */
function sandboxCount(): number {
  const raw = process.env.SANDBOX_PROCESSES;
  if (raw === undefined) return Math.max(3, Math.min(4, availableParallelism()));
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0 || n > 16) fail(`SANDBOX_PROCESSES must be a whole number from 0 to 16 (got "${raw}"). The server was not started.`);
  return n;
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8787);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) fail(`PORT must be a TCP port number (got "${process.env.PORT}").`);
  const sandboxes = sandboxCount();
  const dir = stateDir();

  const catalog = buildCatalog();
  if (!catalog.ok) fail(`Contracts, connectors or policy are invalid; the server was not started.\n${catalog.message}`);
  await buildViewer().catch((error: unknown) => fail(`The evidence viewer could not be built; the server was not started.\n${String(error)}`));
  const created = (Object.keys(LOCAL_KEYS) as LocalKeyName[]).filter((name) => !hasKey(name, dir));
  const identity = await ensureKey("identity", dir);
  const taskSigning = await ensureKey("taskSigning", dir);
  const planner = await ensureKey("planner", dir);
  const evidenceSigning = await ensureKey("evidenceSigning", dir);

  const log = (line: string) => process.stderr.write(`[supervisor] ${line}\n`);
  const watchdogToken = randomBytes(32).toString("base64url");
  const supervisor = new Supervisor({ port, watchdogToken, log });
  // PORT first: a port in use stops the start before any runtime process exists.
  await supervisor
    .listen()
    .catch((error: NodeJS.ErrnoException) =>
      fail(
        error.code === "EADDRINUSE"
          ? `Port ${port} is in use: start on a free one with PORT=<port> npm start. The server was not started.`
          : `Cannot listen on 127.0.0.1:${port}: ${error.message}`,
      ),
    );
  const watchdogUrl = await supervisor.listenWatchdog();

  // The local keys, unless the shell sets the same variable (then the shell wins).
  const forwarded = Object.fromEntries(
    Object.entries(process.env).filter((entry): entry is [string, string] => FORWARDED_VARS.test(entry[0]) && entry[1] !== undefined),
  );
  const override = catalogOverride();
  const mainVars: Record<string, string> = {
    AUTH_DEV_PUBLIC_JWK: JSON.stringify(identity.publicJwk),
    TASK_SIGNING_KEY: JSON.stringify(taskSigning.privateJwk),
    TASK_PLANNERS: JSON.stringify([{ id: "local-planner", tenants: ["*"], jwk: planner.publicJwk }]),
    EVIDENCE_SIGNING_KEY: JSON.stringify(evidenceSigning.privateJwk),
    // the built-in authorization server with its development login page (OAUTH_LOGIN=off or oidc in the shell wins)
    OAUTH_LOGIN: "dev",
    ...forwarded,
    ...(override ? { CATALOG_OVERRIDE: override } : {}),
    // what run.started records as the engine: the workerd wrangler runs
    RUNTIME_ENGINE: workerdVersion(),
    LOCAL_WATCHDOG_URL: watchdogUrl,
    LOCAL_WATCHDOG_TOKEN: watchdogToken,
    // what the sandbox processes ask of every job: only this server's main runtime has it
    LOCAL_SANDBOX_TOKEN: randomBytes(32).toString("base64url"),
  };
  const sandboxVars = Object.fromEntries(Object.entries(mainVars).filter(([name]) => !MAIN_ONLY_VARS.test(name)));
  const configs = writeRuntimeConfigs({ runtimeDir: join(dir, "runtime"), persistTo: join(dir, "wrangler"), sandboxes, mainVars, sandboxVars });

  // Nothing secret in the runtimes' environment either: the shell's forwarded values go through the files.
  const env: Record<string, string | undefined> = {
    X_LOCAL_OBSERVABILITY: "false",
    ...Object.fromEntries(Object.entries(process.env).filter(([name]) => !FORWARDED_VARS.test(name))),
    PATH: runtimePath(),
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_DEV_REGISTRY_PATH: configs.registry,
  };
  const all: RuntimeProcess[] = [];
  const verbose = process.env.LOCAL_VERBOSE === "1";
  let saidOffline = false;
  const offline = () => {
    if (saidOffline) return;
    saidOffline = true;
    log("offline: wrangler cannot reach Cloudflare (for a sample Request.cf object); nothing local needs it, its default is used");
  };
  const hooks = (role: "main" | "sandbox", name: string) => ({
    log,
    // Of every runtime's output, what says something went wrong (all of it is in its output.log).
    output: (line: string, stream: "stdout" | "stderr") => {
      if (role === "main" && verbose) (stream === "stdout" ? process.stdout : process.stderr).write(`${line}\n`);
      else if (OFFLINE_NOISE.test(line)) offline();
      else if (WORTH_SHOWING.test(line)) process.stderr.write(`[${name}] ${line}\n`);
    },
    lost: (runtime: RuntimeProcess, loss: Loss) => {
      log(`${runtime.spec.name}: runtime lost (${loss.cause.replace("_", " ")})`);
      if (role === "main") supervisor.mainLost(loss);
    },
    up: (runtime: RuntimeProcess) => {
      log(`${runtime.spec.name}: serving again${runtime.lastLoss ? ` ${Date.now() - runtime.lastLoss.at} ms after it was lost` : ""}`);
      if (role === "main") supervisor.mainUp();
    },
  });
  const mainRuntime = new RuntimeProcess(configs.main, configs.registry, env, hooks("main", configs.main.name));
  const sandboxRuntimes = configs.sandboxes.map((spec) => new RuntimeProcess(spec, configs.registry, env, hooks("sandbox", spec.name)));
  all.push(mainRuntime, ...sandboxRuntimes);

  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    supervisor.stop();
    await Promise.all(all.map((runtime) => runtime.stop()));
    process.exit(code);
  };
  for (const signal of ["SIGINT", "SIGTERM", "SIGHUP"] as const) process.on(signal, () => void stop(0));
  // `npm start` killed without passing the signal on (SIGKILL, or an npm that does not forward it): stop with it
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) void stop(0);
  }, 500).unref();

  const started = await Promise.all(
    all.map(async (runtime, index) => {
      await sleep(index * STAGGER_MS);
      return await runtime.start(120_000);
    }),
  );
  if (!started.every(Boolean)) {
    log(
      `${all
        .filter((_, i) => !started[i])
        .map((r) => r.spec.name)
        .join(", ")} did not start; see the output above.`,
    );
    await stop(1);
    return;
  }
  supervisor.attach({ main: mainRuntime, sandboxes: sandboxRuntimes });
  supervisor.mainUp();

  // Contracts and policy edited while serving: invalid stops every request at the door until
  // fixed; a valid change restarts the main runtime on it (requests wait, none is lost).
  // Validation writes nothing while serving: the main runtime's wrangler watches what it bundles
  // and would reload at once, cutting off the requests in it; the new catalog is written inside
  // the restart, once they are answered.
  const initial = checkCatalog();
  let served = initial.ok ? initial.files : "";
  watchData({
    dirs: [CONTRACTS_DIR, CONNECTORS_DIR, POLICY_DIR],
    validate: checkCatalog,
    onInvalid: (message) => {
      if (!supervisor.broken) log(`contracts, connectors or policy became invalid; every request is refused until they are fixed:\n${message}`);
      supervisor.broken = {
        code: "data_invalid",
        message: `The server's contracts, connectors or policy are invalid, so nothing is served until an operator fixes them.\n${message}`,
      };
    },
    onValid: (files) => {
      if (supervisor.broken) log("contracts and policy are valid again");
      supervisor.broken = null;
      if (files === served) return;
      served = files;
      log("contracts, connectors or policy changed; restarting the main runtime on them");
      void supervisor.reloadMain(() =>
        mainRuntime.replace("reload", () => {
          buildCatalog();
          const override = catalogOverride();
          if (override) {
            mainVars.CATALOG_OVERRIDE = override;
            writeVars(configs.main, mainVars);
          }
        }),
      );
    },
  });
  const layout = sandboxes === 0 ? "sandboxes inside the main runtime, as deployed" : `${sandboxes} sandbox processes`;
  const keys = created.length > 0 ? `; created local keys: ${created.join(", ")}` : "";
  process.stdout.write(`agent-exec is serving MCP at http://127.0.0.1:${port}/mcp (state: ${dir}; ${layout}${keys})\n`);
}

main().catch((error: unknown) => fail(error instanceof Error ? (error.stack ?? error.message) : String(error)));

/** The workerd that wrangler runs (wrangler's own miniflare's), as "workerd <npm version>". */
function workerdVersion(): string {
  try {
    const miniflare = createRequire(createRequire(import.meta.url).resolve("wrangler/package.json")).resolve("miniflare");
    const manifest = createRequire(miniflare).resolve("workerd/package.json");
    return `workerd ${(JSON.parse(readFileSync(manifest, "utf8")) as { version: string }).version}`;
  } catch {
    return "workerd (version unknown)";
  }
}
