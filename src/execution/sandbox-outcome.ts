// What a sandbox run produced. The executor always returns one of these and never throws.
import { z } from "zod";
import type { PlatformError } from "../errors/index.ts";
import type { TerminationReason } from "../evidence/index.ts";

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
