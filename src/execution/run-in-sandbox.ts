// Runs one task's code in a fresh dynamic worker (Worker Loader `load()`, never
// reused), with no network and only the bindings the contract grants, under the
// contract's limits. Returns a SandboxOutcome; never throws.
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { utf8Bytes } from "../evidence/index.ts";
import { HARNESS_MODULE, SANDBOX_HARNESS_SOURCE, TASK_MODULE } from "./sandbox-harness.ts";
import { type LogLine, type SandboxAnswer, SandboxAnswerSchema, type SandboxOutcome } from "./sandbox-outcome.ts";

/** The compatibility date sandboxes run with; pinned so an upgrade of ours never changes theirs silently. */
export const SANDBOX_COMPATIBILITY_DATE = "2026-11-01";

export type SandboxJob = {
  runId: string;
  contract: Contract;
  code: string;
  input: unknown;
};

type HarnessStub = { run(request: unknown): Promise<unknown> };

const NO_LOGS = { lines: [] as LogLine[], bytes: 0, truncated: false };

export async function runInSandbox(loader: WorkerLoader, job: SandboxJob): Promise<SandboxOutcome> {
  const { limits } = job.contract;
  const loadedAt = Date.now();
  let deadline: ReturnType<typeof setTimeout> | undefined;
  try {
    const worker = loader.load({
      compatibilityDate: SANDBOX_COMPATIBILITY_DATE,
      mainModule: HARNESS_MODULE,
      modules: { [HARNESS_MODULE]: SANDBOX_HARNESS_SOURCE, [TASK_MODULE]: job.code },
      env: {},
      globalOutbound: null,
      limits: { cpuMs: limits.cpuMs, subRequests: limits.subRequests },
    });
    const harness = worker.getEntrypoint() as unknown as HarnessStub;
    const request = {
      runId: job.runId,
      contract: { id: job.contract.id, version: job.contract.version },
      input: job.input,
      limits: { outputBytes: limits.outputBytes, logBytes: limits.logBytes },
    };
    const timedOut = new Promise<"timed_out">((resolve) => {
      deadline = setTimeout(() => resolve("timed_out"), limits.wallMs);
    });
    const answer = await Promise.race([harness.run(request), timedOut]);
    const answeredAt = Date.now();
    if (answer === "timed_out") {
      return {
        termination: "timed_out",
        resultBytes: null,
        logs: NO_LOGS,
        error: new PlatformError("timed_out", `The run did not finish within its ${limits.wallMs} ms deadline.`),
        latencyMs: { start: null, exec: answeredAt - loadedAt },
      };
    }
    const parsed = SandboxAnswerSchema.safeParse(answer);
    if (!parsed.success) {
      return failed(new PlatformError("sandbox_protocol_error", "The sandbox answered in an unexpected shape."), { start: null, exec: answeredAt - loadedAt });
    }
    return fromAnswer(parsed.data, limits.outputBytes, limits.logBytes, loadedAt, answeredAt);
  } catch (error) {
    return failed(startFailure(error), { start: null, exec: null });
  } finally {
    if (deadline !== undefined) clearTimeout(deadline);
  }
}

function fromAnswer(answer: SandboxAnswer, outputCap: number, logCap: number, loadedAt: number, answeredAt: number): SandboxOutcome {
  const latencyMs = { start: Math.max(0, answer.startedAt - loadedAt), exec: Math.max(0, answeredAt - answer.startedAt) };
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

function tooLarge(resultBytes: number, cap: number, logs: SandboxOutcome["logs"], latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  return {
    termination: "output_too_large",
    resultBytes,
    logs,
    error: new PlatformError("output_too_large", `The result is ${resultBytes} bytes; this contract returns at most ${cap}.`),
    latencyMs,
  };
}

function failed(error: PlatformError, latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  return { termination: "failed", resultBytes: null, logs: NO_LOGS, error, latencyMs };
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
 * with "Failed to start Worker"; workerd cancels a call whose promise can never settle.
 */
function startFailure(error: unknown): PlatformError {
  const text = error instanceof Error ? error.message : String(error);
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
  console.error(JSON.stringify({ event: "sandbox_unavailable", error: text }));
  return new PlatformError("sandbox_unavailable", "The sandbox could not be started.", { cause: error });
}
