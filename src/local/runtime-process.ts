// One local runtime process: a `wrangler dev` running one of the configurations in
// runtime-configs.ts, with the two workerd processes under it (wrangler's proxy, serving the
// port, and the user runtime). The supervisor looks at it every tick: a dead user runtime
// is one wrangler restarts by itself (checked, and replaced whole if it does not come back);
// a dead proxy or a dead wrangler means the whole process is replaced, orphans killed.
import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, rmSync, type WriteStream } from "node:fs";
import { get as httpGet } from "node:http";
import { createServer } from "node:net";
import { setPriority } from "node:os";
import { delimiter, dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { ROOT } from "./dev-keys.ts";
import { alive, isWorkerd, killAll, type RuntimePids, workerdBelow } from "./process-table.ts";
import type { RuntimeSpec } from "./runtime-configs.ts";

/** Why a runtime's user process went away: stopped by the watchdog, out of memory, restarted on new data, or anything else. */
export type LossCause = "watchdog" | "out_of_memory" | "reload" | "crashed";
export type Loss = { at: number; cause: LossCause };

export type RuntimeHooks = {
  log: (line: string) => void;
  /** The runtime's own output, line by line (the main runtime's is passed through, a sandbox's prefixed). */
  output: (line: string, stream: "stdout" | "stderr") => void;
  /** The runtime stopped serving (its user process or the whole process went). */
  lost: (runtime: RuntimeProcess, loss: Loss) => void;
  /** It serves again. */
  up: (runtime: RuntimeProcess) => void;
};

/** The longest wrangler gets to bring its user runtime back by itself before the process is replaced whole. */
const SELF_RESTART_MS = 2_500;
/** The longest one start of a wrangler gets to serve before it is killed and started again (a start takes 2-8 s). */
const ATTEMPT_MS = 30_000;
/** How much lower a sandbox process's CPU priority is than the main runtime's (nice value, 0-19). */
const SANDBOX_NICENESS = 10;
const BUILD_FAILED = /Build failed with \d+ error/;
const OUT_OF_MEMORY = /Reached heap limit|JavaScript heap out of memory|Fatal JavaScript out of memory/;
const WRANGLER = join(ROOT, "node_modules/wrangler/wrangler-dist/cli.js");
const EXIT_WITH_PARENT = pathToFileURL(join(ROOT, "src/local/exit-with-parent.ts")).href;

export class RuntimeProcess {
  readonly spec: RuntimeSpec;
  /** Where it serves HTTP (wrangler's proxy); a new port with each replacement. */
  port = 0;
  serving = false;
  lastLoss: Loss | null = null;
  readonly #hooks: RuntimeHooks;
  readonly #registry: string;
  readonly #env: Record<string, string | undefined>;
  #child: ChildProcess | null = null;
  #pids: RuntimePids = { proxy: [], user: [] };
  /** Every workerd seen under this runtime's current wrangler. */
  #seen = new Set<number>();
  #stopping = false;
  #replacing: Promise<void> | null = null;
  #outOfMemoryAt = 0;
  #killedAt = 0;
  #lostSince = 0;
  #checking = false;
  /** All of its output, also what is not passed on: STATE_DIR/runtime/<name>/output.log. */
  readonly #log: WriteStream;

  constructor(spec: RuntimeSpec, registry: string, env: Record<string, string | undefined>, hooks: RuntimeHooks) {
    this.spec = spec;
    this.#registry = registry;
    this.#env = env;
    this.#hooks = hooks;
    this.#log = createWriteStream(join(dirname(spec.configPath), "output.log"), { flags: "a", mode: 0o600 });
  }

  /** Starts wrangler and waits until the runtime serves; a wrangler that exits while starting is started again (false: none served within the limit). */
  async start(limitMs: number): Promise<boolean> {
    const until = Date.now() + limitMs;
    for (let attempt = 1; Date.now() < until && !this.#stopping; attempt++) {
      const outcome = await this.#startOnce(Math.min(until, Date.now() + ATTEMPT_MS));
      if (outcome === "serving") return true;
      if (outcome === "timed out") {
        // seen rarely under load: a wrangler that prints its bindings and then never serves
        this.#hooks.log(`${this.spec.name}: did not serve within ${ATTEMPT_MS} ms (attempt ${attempt}); starting it again`);
        this.#killTree();
        continue;
      }
      if (outcome === "build failed") {
        this.#hooks.log(`${this.spec.name}: its Worker did not build (the error is above); not starting it`);
        return false;
      }
      this.#hooks.log(`${this.spec.name}: wrangler exited while starting (attempt ${attempt}); starting it again`);
    }
    return false;
  }

  async #startOnce(until: number): Promise<"serving" | "exited" | "timed out" | "build failed"> {
    this.port = await freePort();
    // wrangler picks 9229 for its inspector unless told: two starting at once would both take it
    const inspectorPort = await freePort();
    // A registry entry left by a process that was killed would keep this one from registering for 90 s.
    rmSync(join(this.#registry, this.spec.name), { force: true });
    const args = [
      "--no-warnings",
      "--import",
      EXIT_WITH_PARENT,
      WRANGLER,
      "dev",
      "--config",
      this.spec.configPath,
      "--ip",
      "127.0.0.1",
      "--port",
      String(this.port),
      "--persist-to",
      this.spec.persistTo,
      "--inspector-port",
      String(inspectorPort),
      "--show-interactive-dev-session=false",
    ];
    let buildFailed = false;
    const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], env: this.#env as NodeJS.ProcessEnv });
    // A sandbox process runs at a lower CPU priority than the main runtime (its workerd inherit it):
    // a runaway's busy loop then takes what the main runtime and the other tenants leave, not a core from them.
    if (this.spec.role === "sandbox" && child.pid !== undefined) {
      try {
        setPriority(child.pid, SANDBOX_NICENESS);
      } catch (error) {
        this.#hooks.log(`${this.spec.name}: could not lower its CPU priority (${String(error)}); it runs at the main runtime's`);
      }
    }
    this.#child = child;
    this.#pids = { proxy: [], user: [] };
    for (const [stream, name] of [
      [child.stdout, "stdout"],
      [child.stderr, "stderr"],
    ] as const) {
      let rest = "";
      stream?.on("data", (chunk: Buffer) => {
        const lines = (rest + chunk.toString()).split("\n");
        rest = lines.pop() ?? "";
        for (const line of lines) {
          if (OUT_OF_MEMORY.test(line)) this.#outOfMemoryAt = Date.now();
          if (BUILD_FAILED.test(line)) buildFailed = true;
          this.#hooks.output(line, name);
          this.#log.write(`${line}\n`);
        }
      });
    }
    let started = false;
    child.on("error", (error) => this.#hooks.log(`${this.spec.name}: wrangler could not be run: ${error.message}`));
    child.once("exit", (code, signal) => {
      // its workerd processes outlive it; they are ours to stop (and only they)
      this.#reapSeen(child.pid);
      if (!started || this.#child !== child || this.#stopping) return;
      this.#hooks.log(`${this.spec.name}: wrangler exited (${signal ?? code}); replacing it`);
      void this.replace("crashed");
    });
    this.#log.write(`[supervisor] started wrangler (pid ${child.pid}) on port ${this.port}\n`);
    let probes = 0;
    while (Date.now() < until && child.exitCode === null && child.signalCode === null && !buildFailed) {
      this.#observe(child);
      probes++;
      if (await this.healthy(1_000)) {
        this.#log.write(`[supervisor] serving after ${probes} probe(s)\n`);
        this.#pids = this.#observe(child);
        this.serving = true;
        started = true;
        return "serving";
      }
      await sleep(100);
    }
    if (buildFailed) {
      // wrangler would wait for a change of the sources; nothing of ours will make one
      this.#killTree();
      return "build failed";
    }
    if (child.exitCode !== null || child.signalCode !== null) return "exited";
    return "timed out";
  }

  /** Whether the Worker in it answers now (a blocked runtime does not). */
  healthy(timeoutMs: number): Promise<boolean> {
    // A plain request with its own timer: the probe must end, whatever the runtime does with it.
    return new Promise((resolve) => {
      const request = httpGet({ host: "127.0.0.1", port: this.port, path: "/", agent: false }, (response) => {
        response.resume();
        response.on("end", () => {
          clearTimeout(timer);
          resolve(response.statusCode === 200 && (this.spec.role === "sandbox" || response.headers["x-agent-exec"] !== undefined));
        });
        response.on("error", () => settle());
      });
      const settle = () => {
        clearTimeout(timer);
        request.destroy();
        resolve(false);
      };
      const timer = setTimeout(settle, timeoutMs);
      request.on("error", settle);
    });
  }

  /** One look, every supervisor tick: did any of its processes go away? */
  async check(): Promise<void> {
    const child = this.#child;
    if (this.#checking || this.#replacing || this.#stopping || !child?.pid) return;
    this.#checking = true;
    try {
      if (this.#pids.proxy.length === 0 || this.#pids.user.length === 0) {
        if (this.serving) this.#pids = this.#observe(child);
        return;
      }
      if (!this.#pids.proxy.every(alive)) {
        this.#hooks.log(`${this.spec.name}: wrangler's proxy process is gone; replacing the whole process`);
        await this.replace("crashed");
        return;
      }
      if (this.#lostSince === 0 && !this.#pids.user.every(alive)) {
        // wrangler restarts its user runtime by itself; the runs that were in it are lost
        this.#lostSince = Date.now();
        this.#lose(this.#causeOfLoss());
      }
      if (this.#lostSince > 0) {
        const current = this.#observe(child);
        if (current.user.length > 0 && current.user.every(alive) && (await this.healthy(500))) {
          this.#pids = current;
          this.#lostSince = 0;
          this.serving = true;
          this.#hooks.up(this);
        } else if (Date.now() - this.#lostSince > SELF_RESTART_MS) {
          this.#hooks.log(`${this.spec.name}: its runtime did not come back within ${SELF_RESTART_MS} ms; replacing the whole process`);
          await this.replace(this.lastLoss?.cause ?? "crashed");
        }
      }
    } finally {
      this.#checking = false;
    }
  }

  /** The watchdog's stop: kills the user runtime (a runaway's busy loop with it); wrangler starts a fresh one. */
  killRuntime(): void {
    this.#killedAt = Date.now();
    killAll(this.#pids.user);
  }

  /**
   * Replaces the whole process: everything under it killed (orphans included), a fresh
   * wrangler on a new port. `prepare` runs between the two (new data for the new one).
   */
  replace(cause: LossCause, prepare?: () => void): Promise<void> {
    if (this.#replacing) return this.#replacing;
    this.#replacing = (async () => {
      if (this.#lostSince === 0) this.#lose(cause);
      const old = this.#child;
      const pids = old?.pid ? [old.pid, ...this.#pids.proxy, ...this.#pids.user, ...workerdBelow(old.pid, this.port).user] : [];
      this.#child = null;
      killAll(pids);
      prepare?.();
      for (let attempt = 1; !this.#stopping; attempt++) {
        if (await this.start(30_000)) break;
        this.#hooks.log(`${this.spec.name}: did not serve after a restart (attempt ${attempt}); trying again`);
        this.#killTree();
      }
      this.#lostSince = 0;
      if (!this.#stopping) this.#hooks.up(this);
    })().finally(() => {
      this.#replacing = null;
    });
    return this.#replacing;
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (!child?.pid) return;
    const pids = [...this.#pids.proxy, ...this.#pids.user, ...workerdBelow(child.pid, this.port).user];
    child.kill("SIGTERM");
    const exited = new Promise((resolve) => child.once("exit", resolve));
    await Promise.race([exited, sleep(5_000)]);
    killAll([child.pid, ...pids.filter(alive)]);
  }

  /** The workerd processes under the wrangler now, remembered so they can be stopped if the wrangler dies first. */
  #observe(child: ChildProcess): RuntimePids {
    const pids = workerdBelow(child.pid ?? 0, this.port);
    for (const pid of [...pids.proxy, ...pids.user]) this.#seen.add(pid);
    return pids;
  }

  /** Kills what a dead wrangler left running of the workerd processes seen under it. */
  #reapSeen(wrangler: number | undefined): void {
    const current = this.#child && this.#child.pid !== wrangler ? this.#child : null;
    const keep = new Set(current?.pid ? [...workerdBelow(current.pid, this.port).proxy, ...workerdBelow(current.pid, this.port).user] : []);
    const left = [...this.#seen].filter((pid) => !keep.has(pid) && isWorkerd(pid));
    this.#seen = keep;
    if (left.length > 0) {
      killAll(left);
      this.#hooks.log(`${this.spec.name}: killed ${left.length} workerd process(es) its wrangler left behind`);
    }
  }

  #killTree(): void {
    const pid = this.#child?.pid;
    this.#child = null;
    if (!pid) return;
    const below = workerdBelow(pid, this.port);
    killAll([pid, ...below.proxy, ...below.user]);
  }

  /** Its wrangler process, while there is one. */
  wranglerPid(): number | undefined {
    return this.#child?.exitCode === null && this.#child.signalCode === null ? this.#child.pid : undefined;
  }

  /** Every process of it now, for `ps` checks and for the stack's own stop. */
  pids(): number[] {
    const pid = this.#child?.pid;
    return pid ? [pid, ...this.#pids.proxy, ...this.#pids.user] : [];
  }

  #causeOfLoss(): LossCause {
    const now = Date.now();
    if (now - this.#killedAt < 5_000) return "watchdog";
    if (now - this.#outOfMemoryAt < 5_000) return "out_of_memory";
    return "crashed";
  }

  #lose(cause: LossCause): void {
    this.serving = false;
    this.lastLoss = { at: Date.now(), cause };
    this.#hooks.lost(this, this.lastLoss);
  }

  /** The cause of its last loss, once it is known: out-of-memory output may trail the exit by a moment. */
  async settledLoss(since: number): Promise<Loss | null> {
    const until = Date.now() + 2_000;
    while (Date.now() < until) {
      if (this.lastLoss && this.lastLoss.at >= since - 5_000) {
        if (this.lastLoss.cause === "crashed" && Date.now() - this.#outOfMemoryAt < 5_000) this.lastLoss = { ...this.lastLoss, cause: "out_of_memory" };
        if (this.lastLoss.cause !== "crashed" || Date.now() - this.lastLoss.at > 500) return this.lastLoss;
      }
      await sleep(50);
    }
    // nothing recent: the connection dropped without a loss seen here
    return this.lastLoss && this.lastLoss.at >= since - 5_000 ? this.lastLoss : null;
  }
}

/** The PATH a runtime gets: this Node (22) first, so wrangler's own child processes use it too. */
export function runtimePath(): string {
  return `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ""}`;
}

/** Ports this process handed out: a port freed again before its wrangler bound it must not go to a second one. */
const handedOut = new Set<number>();

/** A loopback port free now and not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => {
        const address = server.address();
        server.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no free port"))));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
