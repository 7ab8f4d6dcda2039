// Turns raw tool arguments into a Task, or into an `invalid_arguments` error that
// says which argument is wrong. Always returns the digests, so a rejected call
// is still recorded with what was sent.
import { type Contract, validatorFor } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { canonicalJson, sha256Hex, utf8Bytes } from "../evidence/index.ts";
import { type Destination, parseDestination } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { type CallDigests, type Task, ToolArgumentsSchema } from "./task.ts";

export type BuildResult = { ok: true; task: Task } | { ok: false; error: PlatformError; digests: CallDigests };

/** The digests of a call's code and input, as its task and its records carry them (whether or not it becomes a task). */
export async function callDigests(rawArguments: unknown): Promise<CallDigests> {
  const raw = (rawArguments ?? {}) as Record<string, unknown>;
  const codeText = typeof raw.code === "string" ? raw.code : lenientJson(raw.code);
  // RFC 8785 refuses lone surrogates and non-finite numbers: such input is refused by
  // buildTask, and digested here as plain JSON so the refusal is still recorded.
  const inputText = tryCanonical(raw.input ?? {}) ?? lenientJson(raw.input ?? {});
  return {
    codeSha256: await sha256Hex(codeText),
    codeBytes: utf8Bytes(codeText),
    inputSha256: await sha256Hex(inputText),
    inputBytes: utf8Bytes(inputText),
  };
}

export async function buildTask(
  meta: { runId: string; receivedAt: number; identity: Identity; contract: Contract },
  rawArguments: unknown,
): Promise<BuildResult> {
  const raw = (rawArguments ?? {}) as Record<string, unknown>;
  const canonicalInput = tryCanonical(raw.input ?? {});
  const digests = await callDigests(rawArguments);
  const reject = (message: string, hint?: string): BuildResult => ({
    ok: false,
    error: new PlatformError("invalid_arguments", message, hint ? { hint } : {}),
    digests,
  });

  const args = ToolArgumentsSchema.safeParse(rawArguments ?? {});
  if (!args.success) {
    const issue = args.error.issues[0];
    const field = issue?.path.length ? issue.path.map(String).join(".") : "(arguments)";
    const message = issue?.code === "unrecognized_keys" ? `unknown argument(s): ${issue.keys.join(", ")}` : (issue?.message ?? "invalid");
    return reject(`Argument ${field}: ${message}.`);
  }
  const { limits } = meta.contract;
  if (digests.codeBytes > limits.codeBytes) {
    return reject(`Argument code is ${digests.codeBytes} bytes; this contract accepts at most ${limits.codeBytes}.`, "Send a smaller module.");
  }
  if (digests.inputBytes > limits.inputBytes) {
    return reject(`Argument input is ${digests.inputBytes} bytes; this contract accepts at most ${limits.inputBytes}.`, "Send less data per call.");
  }
  if (canonicalInput === undefined) {
    return reject("Argument input cannot be canonicalized as JSON (a lone surrogate or a non-finite number).", "Send well-formed Unicode and finite numbers.");
  }
  // The task carries the canonical value, exactly what its digest covers.
  const input: unknown = JSON.parse(canonicalInput);
  const checked = validatorFor(meta.contract.inputSchema).validate(input);
  if (!checked.valid) {
    const problem = checked.errors.at(-1);
    const where = problem?.instanceLocation.replace(/^#/, "input") || "input";
    return reject(
      `Argument ${where} does not match the contract's input schema: ${problem?.error ?? "invalid"}.`,
      "Read the tool's input schema (tools/list) and send matching data.",
    );
  }
  let plan: Task["plan"] = null;
  if (args.data.plan) {
    const destinations = args.data.plan.destinations.map(parseDestination);
    const bad = destinations.indexOf(null);
    if (bad >= 0) {
      return reject(
        `Argument plan.destinations.${bad} is not a destination.`,
        'Write "host", "host:port" or "scheme://host[:port]", e.g. "https://api.example.com".',
      );
    }
    plan = { text: args.data.plan.destinations, destinations: destinations as Destination[], operations: args.data.plan.operations };
  }
  return { ok: true, task: { ...meta, lane: "interactive", code: args.data.code, input, dataClass: args.data.dataClass ?? null, plan, ...digests } };
}

function tryCanonical(value: unknown): string | undefined {
  try {
    return canonicalJson(value);
  } catch {
    return undefined;
  }
}

function lenientJson(value: unknown): string {
  try {
    return JSON.stringify(value) ?? "null";
  } catch {
    return String(value);
  }
}
