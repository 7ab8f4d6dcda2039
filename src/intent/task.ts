// A normalized task: one tool call (or, later, a batch item) with everything the
// policy and execution layers need, digests included.
import { z } from "zod";
import { type Contract, type DataClass, DataClassSchema } from "../contracts/index.ts";
import type { Destination } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";

/** The arguments every contract tool takes. `input` is further checked against the contract's inputSchema. */
/** A plan entry naming connector operations: `notes.searchNotes`, `notes.search*`, `notes.*`. */
const OPERATION_PLAN_ENTRY = /^[a-z][A-Za-z0-9]{0,21}\.(\*|[a-z][A-Za-z0-9]{0,63}\*?)$/;

export const ToolArgumentsSchema = z
  .object({
    code: z.string().min(1, "code must not be empty"),
    input: z.unknown().optional(),
    dataClass: DataClassSchema.optional(),
    plan: z
      .object({
        destinations: z.array(z.string().min(1).max(300)).max(64).default([]),
        operations: z.array(z.string().regex(OPERATION_PLAN_ENTRY, 'a connector operation, "<connector>.<operation>" or "<connector>.*"')).max(64).default([]),
      })
      .strict()
      .optional(),
  })
  .strict();
export type ToolArguments = z.infer<typeof ToolArgumentsSchema>;

export type Task = {
  runId: string;
  receivedAt: number;
  lane: "interactive";
  identity: Identity;
  contract: Contract;
  code: string;
  input: unknown;
  /** The class the caller declared its input to be; null when it declared none. */
  dataClass: DataClass | null;
  /** The destinations the caller declared it will reach; null when it declared none (no drift check). */
  /** What the caller declared it will reach: hosts, and connector operations (`<connector>.<operation>`, `<connector>.*`). */
  plan: { text: string[]; destinations: Destination[]; operations: string[] } | null;
  codeSha256: string;
  codeBytes: number;
  inputSha256: string;
  inputBytes: number;
};

/** Digests of whatever arrived, for evidence of a call that never became a task. */
export type CallDigests = Pick<Task, "codeSha256" | "codeBytes" | "inputSha256" | "inputBytes">;

export function newRunId(): string {
  return `run_${crypto.randomUUID()}`;
}
