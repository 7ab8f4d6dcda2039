// Runs one task's code in a fresh dynamic worker (Worker Loader `load()`, never
// reused) built from its runtime profile: the egress gateway as globalOutbound, only the
// capability bindings the profile grants in env, the contract's limits. Never throws:
// every path ends in a SandboxOutcome. This is the sandbox host's side of a run
// (sandbox-host.ts); the caller holds the run to its deadline from its own side
// (open-sandbox.ts).
//
// Booting and running are separate steps so the caller can boot the isolate while
// it records the run's start: booting evaluates only our harness, never the task.
import type { CapabilityName, Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { type RuntimeRecord, utf8Bytes } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import type { VerifiedTask } from "./admit-task.ts";
import { markRunOver } from "./runs-over.ts";
import type { RuntimeProfile, SandboxBindings } from "./runtime-profile.ts";
import {
  CONNECTOR_BINDING_PREFIX,
  HARNESS_MODULE,
  SANDBOX_HARNESS_SOURCE,
  SOCKETS_BINDING,
  SOCKETS_MODULE,
  SOCKETS_SHIM_SOURCE,
  TASK_MODULE,
} from "./sandbox-harness.ts";
import {
  failed,
  type LogLine,
  memoryExceeded,
  outOfMemory,
  release,
  type SandboxAnswer,
  SandboxAnswerSchema,
  type SandboxOutcome,
  TIMED_OUT,
  timedOut,
  tooLarge,
  withDeadline,
} from "./sandbox-outcome.ts";

/** The compatibility date sandboxes run with; pinned so an upgrade of ours never changes theirs silently. */
export const SANDBOX_COMPATIBILITY_DATE = "2026-11-01";
/**
 * The compatibility flags sandboxes run with. disallow_importable_env: the task's code gets
 * its bindings only as ctx.env from the harness, never the raw env through
 * `import { env } from "cloudflare:workers"` (which held the connectors' raw bindings and the
 * sockets gateway).
 */
export const SANDBOX_COMPATIBILITY_FLAGS: readonly string[] = ["disallow_importable_env"];

/** What a run's start record says ran it: the engine, the sandbox's date and flags, the platform's build (its version metadata). */
export function sandboxRuntime(engine: string, build: { id: string; tag: string; timestamp: string } | undefined): RuntimeRecord {
  return {
    engine,
    sandbox: { compatibilityDate: SANDBOX_COMPATIBILITY_DATE, compatibilityFlags: [...SANDBOX_COMPATIBILITY_FLAGS] },
    build: build ? { id: build.id, tag: build.tag, timestamp: build.timestamp } : null,
  };
}

/** What a sandbox runs: an admitted task (code and input as verified) under its contract and profile. */
export type SandboxJob = {
  runId: string;
  tenant: string;
  session: string;
  contract: Contract;
  profile: RuntimeProfile;
  task: VerifiedTask<unknown>;
};

/** A job as the sandbox host receives it: plain data (the admission's brand stays with the caller, who admitted it). */
export type SandboxJobWire = Omit<SandboxJob, "task"> & { task: { code: string; input: unknown } };

/** The names capability bindings take in the sandbox's env. */
export const BINDING_NAMES: Record<CapabilityName, string> = { docs: "DOCS", tracker: "TRACKER" };

/** A loaded, booting sandbox. `run()` executes the task once booting succeeded; `discard()` lets go of one that will not run. */
export type Sandbox = {
  /** Settles when the isolate is up (or failed to start); never rejects. */
  booted: Promise<void>;
  run(): Promise<SandboxOutcome>;
  discard(): void;
};

type HarnessStub = { warm(): Promise<unknown>; run(request: unknown): Promise<unknown> };
type Boot = { ok: true; startMs: number } | { ok: false; outcome: SandboxOutcome };

export function startSandbox(host: SandboxBindings, job: SandboxJobWire): Sandbox {
  const { limits } = job.contract;
  const { profile } = job;
  const loadedAt = Date.now();
  let harness: HarnessStub;
  try {
    const run = { runId: job.runId, tenant: job.tenant, session: job.session };
    const bounds = { rules: profile.rules, plan: profile.plan, subRequests: limits.subRequests, trace: profile.trace ?? null };
    const gateway = host.gateway({ ...run, ...bounds, via: "code" });
    const env = Object.fromEntries([
      ...profile.capabilities.map((name) => [BINDING_NAMES[name], host.capability(name, { ...run, ...bounds, scope: profile.scope })]),
      ...(profile.connectors ?? []).map((connector) => [
        `${CONNECTOR_BINDING_PREFIX}${connector.name}`,
        host.connector({
          ...run,
          ...bounds,
          connector,
          journal: profile.journal ?? null,
          operationPlan: profile.operationPlan ?? null,
          redaction: job.contract.redaction.rules,
        }),
      ]),
      [SOCKETS_BINDING, gateway],
    ]);
    const worker = host.loader.load({
      compatibilityDate: SANDBOX_COMPATIBILITY_DATE,
      compatibilityFlags: [...SANDBOX_COMPATIBILITY_FLAGS],
      mainModule: HARNESS_MODULE,
      modules: { [HARNESS_MODULE]: SANDBOX_HARNESS_SOURCE, [SOCKETS_MODULE]: { js: SOCKETS_SHIM_SOURCE }, [TASK_MODULE]: job.task.code },
      env,
      globalOutbound: gateway,
      limits: { cpuMs: limits.cpuMs, subRequests: limits.subRequests },
    });
    harness = worker.getEntrypoint() as unknown as HarnessStub;
  } catch (error) {
    const outcome = rejected(error, { start: null, exec: null });
    return { booted: Promise.resolve(), run: async () => outcome, discard: () => {} };
  }

  const boot: Promise<Boot> = withDeadline(harness.warm(), limits.wallMs).then(
    (answer): Boot => {
      release(answer);
      if (answer === TIMED_OUT) return { ok: false, outcome: timedOut(limits.wallMs, { start: null, exec: null }) };
      const startedAt = (answer as { startedAt?: unknown } | null)?.startedAt;
      return { ok: true, startMs: typeof startedAt === "number" ? Math.max(0, startedAt - loadedAt) : Date.now() - loadedAt };
    },
    (error: unknown): Boot => ({ ok: false, outcome: rejected(error, { start: null, exec: null }) }),
  );

  const run = async (): Promise<SandboxOutcome> => {
    try {
      return await runBooted();
    } finally {
      // from here on nothing of the run leaves this isolate, whatever its code still does
      markRunOver(job.runId);
    }
  };
  const runBooted = async (): Promise<SandboxOutcome> => {
    const booted = await boot;
    if (!booted.ok) return booted.outcome;
    const request = {
      runId: job.runId,
      contract: { id: job.contract.id, version: job.contract.version },
      input: job.task.input,
      limits: { outputBytes: limits.outputBytes, logBytes: limits.logBytes },
      connectors: Object.fromEntries((profile.connectors ?? []).map((connector) => [connector.name, Object.keys(connector.operations)])),
    };
    const calledAt = Date.now();
    let answer: unknown;
    try {
      answer = await withDeadline(harness.run(request), limits.wallMs);
    } catch (error) {
      return rejected(error, { start: booted.startMs, exec: Date.now() - calledAt });
    }
    const answeredAt = Date.now();
    release(answer);
    // A synchronous busy-wait blocks the deadline's timer too: what answers late ran too long, whatever it says.
    if (answer === TIMED_OUT || answeredAt - calledAt > limits.wallMs) return timedOut(limits.wallMs, { start: booted.startMs, exec: answeredAt - calledAt });
    const parsed = SandboxAnswerSchema.safeParse(answer);
    if (!parsed.success) {
      return failed(new PlatformError("sandbox_protocol_error", "The sandbox answered in an unexpected shape."), {
        start: booted.startMs,
        exec: answeredAt - calledAt,
      });
    }
    const latencyMs = { start: booted.startMs, exec: Math.max(0, answeredAt - Math.max(calledAt, parsed.data.startedAt)) };
    return fromAnswer(parsed.data, limits.outputBytes, limits.logBytes, latencyMs);
  };

  return { booted: boot.then(() => undefined), run, discard: () => {} };
}

/** Boot and run in one go, for callers with nothing to overlap. */
export async function runInSandbox(host: SandboxBindings, job: SandboxJobWire): Promise<SandboxOutcome> {
  return await startSandbox(host, job).run();
}

function fromAnswer(answer: SandboxAnswer, outputCap: number, logCap: number, latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  const logs = capLogs(answer.logs, logCap, answer.logsTruncated);
  switch (answer.status) {
    case "ok": {
      // The harness checks the cap too; this check is the one that counts.
      const resultBytes = utf8Bytes(answer.resultJson);
      if (resultBytes > outputCap) return tooLarge(resultBytes, outputCap, logs, latencyMs);
      let result: unknown;
      try {
        result = JSON.parse(answer.resultJson);
      } catch (error) {
        return { ...failed(new PlatformError("sandbox_protocol_error", "The sandbox returned invalid JSON.", { cause: error }), latencyMs), logs };
      }
      return { termination: "completed", result, resultBytes, logs, latencyMs };
    }
    case "too_large":
      return tooLarge(answer.resultBytes, outputCap, logs, latencyMs);
    case "error":
      return {
        termination: "failed",
        resultBytes: null,
        logs,
        error: new PlatformError(answer.code, answer.message),
        ...(answer.stack ? { stack: answer.stack } : {}),
        latencyMs,
      };
  }
}

/** Re-applies the log cap on the host side: the sandbox's own accounting is not trusted. */
function capLogs(lines: LogLine[], cap: number, truncated: boolean): SandboxOutcome["logs"] {
  const kept: LogLine[] = [];
  let bytes = 0;
  for (const line of lines) {
    const size = utf8Bytes(line.message);
    if (bytes + size > cap) return { lines: kept, bytes, truncated: true };
    bytes += size;
    kept.push(line);
  }
  return { lines: kept, bytes, truncated };
}

/**
 * Classifies a rejected sandbox call. The loader rejects a module that does not parse
 * with "Failed to start Worker"; workerd cancels a call whose promise can never settle;
 * the platform ends an isolate that exceeds its memory limit.
 */
function rejected(error: unknown, latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  if (outOfMemory(error)) return memoryExceeded(latencyMs, error);
  return failed(startFailure(error, error instanceof Error ? error.message : String(error)), latencyMs);
}

function startFailure(error: unknown, text: string): PlatformError {
  if (/code had hung and would never generate a response/i.test(text)) {
    return new PlatformError("code_hung", "The code awaited a promise that can never settle; the runtime cancelled it.", { cause: error });
  }
  if (/Failed to start Worker/i.test(text)) {
    const detail = text
      .replace(/^.*Failed to start Worker:?\s*/is, "")
      .replace(/^Uncaught\s+/, "")
      .slice(0, 2_000);
    const code = /SyntaxError/.test(detail) ? "code_syntax_error" : "code_threw";
    return new PlatformError(code, detail || text, { cause: error });
  }
  logEvent("error", { event: "sandbox_unavailable", error: text });
  return new PlatformError("sandbox_unavailable", "The sandbox could not be started.", { cause: error });
}
