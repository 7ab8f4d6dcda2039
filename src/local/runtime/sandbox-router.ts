// The local watchdog's half inside the main runtime, where `npm start` points the Worker's
// SANDBOX_HOST binding. Every run, whatever path it came by, starts here and is registered
// with its deadline: it goes to the sandbox process with the fewest runs in flight that is
// answering; a process that stops answering before the task's code ran is passed over (the
// job boots elsewhere: booting evaluates only the harness, so one call stays at most one run).
// A run still unanswered past its deadline is reported to the supervisor, which restarts
// that process if it no longer answers; the runs it takes down are answered for what
// happened to them (timed_out, memory_exceeded, or cut off, saying so).
import { RpcTarget, WorkerEntrypoint } from "cloudflare:workers";
import { PlatformError } from "../../errors/index.ts";
import {
  cutOff,
  failed,
  HOST_ANSWER_MARGIN_MS,
  memoryExceeded,
  outcomeToWire,
  release,
  SANDBOX_BOOT_LIMIT_MS,
  type SandboxJobWire,
  type SandboxOutcome,
  type SandboxOutcomeWire,
  type SandboxRunStub,
  type SandboxService,
  timedOut,
} from "../../execution/index.ts";
import { logEvent } from "../../log/index.ts";

type RouterEnv = { LOCAL_WATCHDOG_URL?: string; LOCAL_WATCHDOG_TOKEN?: string; LOCAL_SANDBOX_TOKEN?: string } & Record<string, unknown>;

/** A process that has had work and no answer for this long is busy or stalled: new jobs go elsewhere if they can. */
const QUIET_MS = 400;
/** How long a job waits for a boot before it tries another process, when there is one answering. */
const BOOT_PATIENCE_MS = 400;
/** How long a job of a tenant whose run overran lately waits for a restarting process before it shares one. */
const SHARE_AFTER_MS = 1_000;
/** How long after its run overran a tenant's runs keep to processes of their own, where they can. */
const SUSPECT_MS = 60_000;
/** When every process was tried without a boot, the next round starts after this. */
const RETRY_ROUND_MS = 100;
/** After a lost connection, a process is passed over this long (its runtime restarts in about a second). */
const DOWN_MS = 1_500;
/** Past its deadline (the caller answered timed_out at HOST_ANSWER_MARGIN_MS), a run still in its process is reported after this. */
const OVERDUE_AFTER_MS = HOST_ANSWER_MARGIN_MS + 100;
/** While a run past its deadline is still in its process, it is reported again this often. */
const REPORT_AGAIN_MS = 1_000;

export type LossCause = "watchdog" | "out_of_memory" | "crashed";

/** RPC calls this on the target when the caller disposes its stub (workerd has the symbol; the compiler's library may not). */
const DISPOSE: symbol = (Symbol as unknown as { dispose: symbol }).dispose;

/** One loss of a sandbox process: the runs it held at the time, and why it went (asked once). */
type Loss = { runs: ReadonlySet<RoutedRun>; cause: Promise<LossCause> };

class SandboxProcess {
  readonly index: number;
  readonly service: SandboxService;
  readonly running = new Set<RoutedRun>();
  /** Since when this process has had work without answering anything. */
  quietSince = 0;
  downUntil = 0;
  /** Bumped by each loss; a run knows which incarnation it ran in. */
  epoch = 0;
  readonly losses = new Map<number, Loss>();

  constructor(index: number, service: SandboxService) {
    this.index = index;
    this.service = service;
  }

  answered(): void {
    this.quietSince = Date.now();
  }

  take(run: RoutedRun): void {
    if (this.running.size === 0) this.quietSince = Date.now();
    this.running.add(run);
  }

  busy(now: number): boolean {
    return this.running.size > 0 && now - this.quietSince > QUIET_MS;
  }
}

const processes: SandboxProcess[] = [];

function pool(env: RouterEnv): SandboxProcess[] {
  if (processes.length === 0) {
    for (let index = 0; ; index++) {
      const service = env[`SANDBOX_${index}`] as SandboxService | undefined;
      if (!service) break;
      processes.push(new SandboxProcess(index, service));
    }
  }
  return processes;
}

/** Tenants with a run that overran its deadline lately, until when: their runs get processes of their own. */
const suspects = new Map<string, number>();
const isSuspect = (tenant: string, now: number) => (suspects.get(tenant) ?? 0) > now;

/**
 * The process a tenant's new job goes to, best first: one that answers before a busy one
 * (maybe stalled for a whole deadline); one without runs of a tenant whose run overran its
 * deadline lately (another runaway is likely: agents retry), then without any other
 * tenant's runs (so a runaway shares its process with its own tenant's runs only, where
 * there is a choice); one the tenant already uses, once its runs are spread over all but one
 * process (one is always left to the other tenants: a tenant running at its budget keeps
 * every process it is on busy); the fewest runs in flight; one not lost lately. Tenants apart
 * comes before up: a boot on a process still restarting fails at once (or within
 * BOOT_PATIENCE_MS) and the next is tried, and a runaway's tenant waits for it.
 */
function candidates(
  all: SandboxProcess[],
  tried: ReadonlySet<SandboxProcess>,
  tenant: string,
): Array<{ process: SandboxProcess; shared: boolean; busy: boolean }> {
  const now = Date.now();
  for (const p of all) for (const run of p.running) if (run.forgottenBy < now) p.running.delete(run);
  const ownsRun = (p: SandboxProcess) => [...p.running].some((run) => run.tenant === tenant);
  const spreadOver = all.filter(ownsRun).length;
  return all
    .filter((p) => !tried.has(p))
    .map((process) => {
      const others = [...process.running].filter((run) => run.tenant !== tenant);
      return {
        process,
        busy: process.busy(now),
        withSuspect: others.some((run) => isSuspect(run.tenant, now)),
        shared: others.length > 0,
        // a process the tenant is not on yet, when it is on all but one already
        spreads: all.length > 1 && spreadOver >= all.length - 1 && !ownsRun(process),
        down: process.downUntil > now,
      };
    })
    .sort(
      (a, b) =>
        Number(a.busy) - Number(b.busy) ||
        Number(a.withSuspect) - Number(b.withSuspect) ||
        Number(a.shared) - Number(b.shared) ||
        Number(a.spreads) - Number(b.spreads) ||
        a.process.running.size - b.process.running.size ||
        Number(a.down) - Number(b.down) ||
        a.process.index - b.process.index,
    );
}

class Watchdog {
  readonly #url: string | undefined;
  readonly #token: string;

  constructor(env: RouterEnv) {
    this.#url = env.LOCAL_WATCHDOG_URL;
    this.#token = env.LOCAL_WATCHDOG_TOKEN ?? "";
  }

  /** Asks the supervisor to look at a process whose run is past its deadline (it restarts it if it does not answer). */
  async overdue(sandbox: number, runId: string): Promise<void> {
    await this.#post("overdue", { sandbox, runId }).catch((error: unknown) =>
      logEvent("error", { event: "watchdog_unreachable", sandbox, runId, error: String(error) }),
    );
  }

  /** Why a process went away: the supervisor restarted it, it ran out of memory, or it crashed (or was killed). */
  async lossOf(sandbox: number, at: number): Promise<LossCause> {
    try {
      const answer = (await (await this.#post("lost", { sandbox, at })).json()) as { cause?: unknown };
      return answer.cause === "watchdog" || answer.cause === "out_of_memory" ? answer.cause : "crashed";
    } catch (error) {
      logEvent("error", { event: "watchdog_unreachable", sandbox, error: String(error) });
      return "crashed";
    }
  }

  async #post(what: string, body: object): Promise<Response> {
    if (!this.#url) throw new Error("LOCAL_WATCHDOG_URL is not set");
    const response = await fetch(`${this.#url}/${what}`, {
      method: "POST",
      headers: { authorization: `Bearer ${this.#token}`, "content-type": "application/json" },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(10_000),
    });
    if (!response.ok) throw new Error(`watchdog answered ${response.status}`);
    return response;
  }
}

type Boot = { ok: true; process: SandboxProcess; remote: SandboxRunStub; epoch: number } | { ok: false; outcome: SandboxOutcome };

/** One job: booted on a sandbox process that answers, run there once, answered for whatever happens to that process. */
class RoutedRun extends RpcTarget {
  readonly #job: SandboxJobWire;
  /** The job with this start's token, which the sandbox processes ask for (src/local/runtime/sandbox-worker.ts). */
  readonly #signed: SandboxJobWire;
  readonly #watchdog: Watchdog;
  readonly #boot: Promise<Boot>;
  /** The start() call's context: the run is watched to its end there, even after its caller let go (answered timed_out). */
  readonly #ctx: ExecutionContext;
  /** Past this, a run still counted as in its process was lost track of (its watch ended) and no longer counts. */
  readonly forgottenBy: number;
  readonly tenant: string;
  #ran = false;
  #discarded = false;
  #booted: Boot | null = null;

  constructor(job: SandboxJobWire, all: SandboxProcess[], watchdog: Watchdog, ctx: ExecutionContext, localToken: string) {
    super();
    this.#job = job;
    const signed: SandboxJobWire & { localToken: string } = { ...job, localToken: localToken };
    this.#signed = signed;
    this.#watchdog = watchdog;
    this.#ctx = ctx;
    this.tenant = job.tenant;
    this.forgottenBy = Date.now() + 2 * (job.contract.limits.wallMs + HOST_ANSWER_MARGIN_MS) + 60_000;
    this.#boot = this.#bootSomewhere(all);
    ctx.waitUntil(this.#boot);
  }

  async booted(): Promise<void> {
    await this.#boot;
  }

  run(): Promise<SandboxOutcomeWire> {
    this.#ran = true;
    const running = this.#run();
    this.#ctx.waitUntil(running);
    return running;
  }

  async #run(): Promise<SandboxOutcomeWire> {
    const boot = await this.#boot;
    if (!boot.ok) return outcomeToWire(boot.outcome);
    const { process, remote, epoch } = boot;
    const { wallMs } = this.#job.contract.limits;
    const calledAt = Date.now();
    let overdue = false;
    let report: ReturnType<typeof setInterval> | undefined;
    // Past the deadline the run is reported, and again each second while it is still in its
    // process: a report that did not arrive, or a process that still answered then, is looked at again.
    const timer = setTimeout(() => {
      overdue = true;
      suspects.set(this.tenant, Date.now() + SUSPECT_MS);
      void this.#watchdog.overdue(process.index, this.#job.runId);
      report = setInterval(() => void this.#watchdog.overdue(process.index, this.#job.runId), REPORT_AGAIN_MS);
    }, wallMs + OVERDUE_AFTER_MS);
    try {
      const answer = (await remote.run()) as SandboxOutcomeWire;
      process.answered();
      return answer;
    } catch (error) {
      const lostAt = Date.now();
      return outcomeToWire(await this.#lost(process, epoch, error, { overdue: overdue || lostAt - calledAt > wallMs, execMs: lostAt - calledAt }));
    } finally {
      clearTimeout(timer);
      if (report) clearInterval(report);
      process.running.delete(this);
      release(remote);
    }
  }

  /** The caller let go without running (its start record failed, or it refused the run). */
  [DISPOSE](): void {
    if (this.#ran) return;
    this.#discarded = true;
    this.#letGo();
  }

  #letGo(): void {
    if (this.#booted?.ok) {
      this.#booted.process.running.delete(this);
      release(this.#booted.remote);
    }
  }

  async #bootSomewhere(all: SandboxProcess[]): Promise<Boot> {
    this.#booted = await this.#boot1(all);
    if (this.#discarded) this.#letGo();
    return this.#booted;
  }

  /**
   * Tries the processes in pick order, round after round, until one boots the job or the
   * caller's deadline for it passes: a process restarting after a loss comes back within a
   * second or two, and a busy one is given BOOT_PATIENCE_MS before the next is tried (one
   * that answers other runs meanwhile is waited for).
   */
  async #boot1(all: SandboxProcess[]): Promise<Boot> {
    const startedAt = Date.now();
    // the caller gives up on a boot after SANDBOX_BOOT_LIMIT_MS: give up first, and say why
    const until = startedAt + SANDBOX_BOOT_LIMIT_MS - 100;
    const tried = new Set<SandboxProcess>();
    let lastError: unknown;
    while (Date.now() < until) {
      const best = candidates(all, tried, this.tenant)[0];
      // A tenant whose run overran lately waits a little for a process of its own (one the
      // watchdog is restarting comes back within a second or two) rather than share one.
      const now = Date.now();
      const restarting = all.some((p) => p.downUntil > now);
      if (!best || (isSuspect(this.tenant, now) && (best.shared || best.busy) && restarting && now - startedAt < SHARE_AFTER_MS)) {
        tried.clear();
        await sleep(RETRY_ROUND_MS);
        continue;
      }
      const { process } = best;
      tried.add(process);
      process.take(this);
      const remote = process.service.start(this.#signed);
      const booted = remote.booted().then(
        () => "up" as const,
        (error: unknown) => error,
      );
      const patience = Math.max(0, Math.min(all.length > 1 ? BOOT_PATIENCE_MS : Number.POSITIVE_INFINITY, until - Date.now()));
      let answer = await Promise.race([booted, sleep(patience).then(() => "waited" as const)]);
      // A process that answered another run within QUIET_MS is slow (the machine is loaded), not
      // stalled: its boot is waited for, to the caller's limit, rather than thrown away for a
      // boot elsewhere that would be as slow.
      while (answer === "waited" && Date.now() < until && Date.now() - process.quietSince <= QUIET_MS) {
        answer = await Promise.race([booted, sleep(Math.min(RETRY_ROUND_MS, until - Date.now())).then(() => "waited" as const)]);
      }
      if (answer === "up") {
        process.answered();
        return { ok: true, process, remote, epoch: process.epoch };
      }
      process.running.delete(this);
      release(remote);
      if (answer !== "waited") {
        // The connection was lost before any of the task ran: that process is down for now.
        process.downUntil = Date.now() + DOWN_MS;
        lastError = answer;
      }
    }
    const error = new PlatformError("sandbox_unavailable", "No sandbox process answered in time to start the run; nothing of it ran.", {
      cause: lastError,
    });
    return {
      ok: false,
      outcome: failed(error, { start: null, exec: null }),
    };
  }

  /** What to tell about a run whose process went away under it. */
  async #lost(process: SandboxProcess, epoch: number, error: unknown, run: { overdue: boolean; execMs: number }): Promise<SandboxOutcome> {
    let loss = process.losses.get(epoch);
    if (!loss) {
      loss = { runs: new Set(process.running), cause: this.#watchdog.lossOf(process.index, Date.now()) };
      process.losses.set(epoch, loss);
      process.epoch = Math.max(process.epoch, epoch + 1);
      process.downUntil = Date.now() + DOWN_MS;
      // forget old losses; a run that outlives a dozen of them is long gone
      for (const old of process.losses.keys()) if (old < epoch - 10) process.losses.delete(old);
    }
    const cause = await loss.cause;
    const others = loss.runs.size - 1;
    const latencyMs = { start: null, exec: run.execMs };
    const { wallMs } = this.#job.contract.limits;
    const sandbox = `sandbox process ${process.index}`;
    logEvent("warn", { event: "sandbox_process_lost", sandbox: process.index, cause, runId: this.#job.runId, others, error: String(error) });
    if (cause === "watchdog" && run.overdue) {
      const outcome = timedOut(wallMs, latencyMs);
      return {
        ...outcome,
        error: new PlatformError(
          "timed_out",
          `The run did not finish within its ${wallMs} ms deadline and blocked its ${sandbox}; the local watchdog restarted that process.`,
        ),
      };
    }
    if (cause === "watchdog") {
      return cutOff(
        "runtime_restarted",
        `The ${sandbox} was restarted to stop another run that overran its deadline; this run shared it and was cut off.`,
        latencyMs,
      );
    }
    if (cause === "out_of_memory" && others === 0) {
      return memoryExceeded(latencyMs, error, `The run exhausted the memory of its ${sandbox}, which ended; nothing else was running there.`);
    }
    if (cause === "out_of_memory") {
      return cutOff(
        "runtime_crashed",
        `The ${sandbox} ran out of memory while this run and ${others} other run(s) were in it, and ended; which of them exhausted it is not known.`,
        latencyMs,
      );
    }
    return cutOff("runtime_crashed", `The ${sandbox} stopped (killed or crashed) while this run was in it.`, latencyMs);
  }
}

export class SandboxRouter extends WorkerEntrypoint<RouterEnv> {
  start(job: SandboxJobWire): RoutedRun {
    return new RoutedRun(job, pool(this.env), new Watchdog(this.env), this.ctx, this.env.LOCAL_SANDBOX_TOKEN ?? "");
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
