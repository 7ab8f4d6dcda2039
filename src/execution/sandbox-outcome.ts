// What a sandbox run produced. The executor always returns one of these and never throws.
import { z } from "zod";
import { ERROR_CODES, type ErrorCode, PlatformError } from "../errors/index.ts";
import { type TerminationReason, TerminationReasonSchema } from "../evidence/index.ts";
import type { Redactor } from "../redaction/index.ts";

export const LogLineSchema = z.object({
  level: z.enum(["log", "info", "warn", "error", "debug"]),
  message: z.string(),
});
export type LogLine = z.infer<typeof LogLineSchema>;

export type SandboxOutcome = {
  termination: TerminationReason;
  /** The code's return value, when it completed. */
  result?: unknown;
  resultBytes: number | null;
  logs: { lines: LogLine[]; bytes: number; truncated: boolean };
  error?: PlatformError;
  /** A stack trace from the sandbox for `code_threw` and friends; the caller may show it. */
  stack?: string;
  latencyMs: { start: number | null; exec: number | null };
};

/** The harness's answer, validated as untrusted input. */
const Logs = {
  logs: z.array(LogLineSchema),
  logBytes: z.int().min(0),
  logsTruncated: z.boolean(),
  startedAt: z.number(),
};
export const SandboxAnswerSchema = z.discriminatedUnion("status", [
  z.object({ status: z.literal("ok"), resultJson: z.string(), ...Logs }),
  z.object({ status: z.literal("too_large"), resultBytes: z.int().min(0), ...Logs }),
  z.object({
    status: z.literal("error"),
    code: z.enum(["code_syntax_error", "invalid_module", "code_threw", "result_not_serializable"]),
    message: z.string().max(4_000),
    stack: z.string().max(8_000).optional(),
    ...Logs,
  }),
]);
export type SandboxAnswer = z.infer<typeof SandboxAnswerSchema>;

/**
 * A SandboxOutcome as it crosses from the sandbox host to the caller (an RPC boundary: locally
 * another process). The error travels as its code and message and becomes a PlatformError again.
 */
export const SandboxOutcomeWireSchema = z.object({
  termination: TerminationReasonSchema,
  result: z.unknown().optional(),
  resultBytes: z.int().min(0).nullable(),
  logs: z.object({ lines: z.array(LogLineSchema), bytes: z.int().min(0), truncated: z.boolean() }),
  error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }).optional(),
  stack: z.string().optional(),
  latencyMs: z.object({ start: z.number().nullable(), exec: z.number().nullable() }),
});
export type SandboxOutcomeWire = z.infer<typeof SandboxOutcomeWireSchema>;

export function outcomeToWire(outcome: SandboxOutcome): SandboxOutcomeWire {
  const { error, ...rest } = outcome;
  return { ...rest, ...(error ? { error: { code: error.code, message: error.message, hint: error.hint } } : {}) };
}

const KNOWN_CODES = new Set<string>(ERROR_CODES);

/** The caller's side: an answer that does not parse is the sandbox's fault, recorded as such. */
export function outcomeFromWire(answer: unknown): SandboxOutcome {
  const parsed = SandboxOutcomeWireSchema.safeParse(answer);
  if (!parsed.success) {
    return {
      termination: "failed",
      resultBytes: null,
      logs: { lines: [], bytes: 0, truncated: false },
      error: new PlatformError("sandbox_protocol_error", "The sandbox host answered in an unexpected shape."),
      latencyMs: { start: null, exec: null },
    };
  }
  const { error, ...rest } = parsed.data;
  if (!error) return rest;
  const code: ErrorCode = KNOWN_CODES.has(error.code) ? (error.code as ErrorCode) : "sandbox_protocol_error";
  return { ...rest, error: new PlatformError(code, error.message, error.hint === undefined ? {} : { hint: error.hint }) };
}

const NO_LOGS = { lines: [] as LogLine[], bytes: 0, truncated: false };

export function failed(error: PlatformError, latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  return { termination: "failed", resultBytes: null, logs: NO_LOGS, error, latencyMs };
}

export function timedOut(wallMs: number, latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  return {
    termination: "timed_out",
    resultBytes: null,
    logs: NO_LOGS,
    error: new PlatformError("timed_out", `The run did not finish within its ${wallMs} ms deadline.`),
    latencyMs,
  };
}

export function tooLarge(resultBytes: number, cap: number, logs: SandboxOutcome["logs"], latencyMs: SandboxOutcome["latencyMs"]): SandboxOutcome {
  return {
    termination: "output_too_large",
    resultBytes,
    logs,
    error: new PlatformError("output_too_large", `The result is ${resultBytes} bytes; this contract returns at most ${cap}.`),
    latencyMs,
  };
}

/** The run was cut off from outside (its sandbox was lost or restarted); the message says why. */
export function cutOff(
  code: "runtime_restarted" | "runtime_crashed",
  message: string,
  latencyMs: SandboxOutcome["latencyMs"],
  cause?: unknown,
): SandboxOutcome {
  return { termination: "cancelled", resultBytes: null, logs: NO_LOGS, error: new PlatformError(code, message, { cause }), latencyMs };
}

/** Whether a rejection says the runtime ended an isolate for its memory. */
export function outOfMemory(error: unknown): boolean {
  return /memory limit|out of memory/i.test(error instanceof Error ? error.message : String(error));
}

/** The run's isolate used more memory than the runtime allows it; the runtime ended it. */
export function memoryExceeded(latencyMs: SandboxOutcome["latencyMs"], cause?: unknown, message?: string): SandboxOutcome {
  return {
    termination: "memory_exceeded",
    resultBytes: null,
    logs: NO_LOGS,
    error: new PlatformError("memory_exceeded", message ?? "The run exhausted its sandbox's memory and was ended.", { cause }),
    latencyMs,
  };
}

export const TIMED_OUT = Symbol("timed_out");

/** Races work against a timer; an answer that comes after the deadline is let go as it arrives. */
export async function withDeadline<T>(work: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => resolve(TIMED_OUT), ms);
  });
  try {
    const answer = await Promise.race([work, deadline]);
    if (answer === TIMED_OUT) work.then(release, () => {});
    return answer;
  } finally {
    if (timer !== undefined) clearTimeout(timer);
  }
}

/** `Symbol.dispose` where the runtime has it (workerd does; the compiler's library may not name it). */
const DISPOSE = (Symbol as unknown as { dispose?: symbol }).dispose;

/** Disposes an RPC result or stub at once, so the other side of the call is let go now rather than at garbage collection. */
export function release(answer: unknown): void {
  if (DISPOSE === undefined || (typeof answer !== "object" && typeof answer !== "function") || answer === null) return;
  const dispose = (answer as Record<symbol, unknown>)[DISPOSE];
  if (typeof dispose === "function") dispose.call(answer);
}

/** A run that never started: refused (denied, or failed for a platform fault), with nothing to show. */
export function notRun(refusal: PlatformError): SandboxOutcome {
  return {
    termination: refusal.status >= 500 ? "failed" : "denied",
    resultBytes: null,
    logs: { lines: [], bytes: 0, truncated: false },
    latencyMs: { start: null, exec: null },
    error: refusal,
  };
}

/** The outcome with its result, logs, error and stack redacted (what a contract with `redaction.result` tells its caller). */
export function redactedOutcome(outcome: SandboxOutcome, redact: Redactor): SandboxOutcome {
  const { error, stack } = outcome;
  return {
    ...outcome,
    ...(outcome.result !== undefined ? { result: redact.json(outcome.result).value } : {}),
    logs: { ...outcome.logs, lines: outcome.logs.lines.map((line) => ({ ...line, message: redact.text(line.message).text })) },
    ...(error
      ? {
          error: new PlatformError(error.code, redact.text(error.message).text, {
            hint: error.hint,
            ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
          }),
        }
      : {}),
    ...(stack ? { stack: redact.text(stack).text } : {}),
  };
}
