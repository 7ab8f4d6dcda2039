// `ctx.env.<connector>` in the sandbox: one of the organisation's APIs or MCP servers as typed
// operations (connectors/). The harness gives the code one method per operation the run may
// call; each call comes here as `invoke(operation, args)`, and this binding decides it again
// (only the run's granted operations, arguments valid against the operation's schema), sends
// it through the egress gateway as `connector:<name>` (so the contract's rule for it applies
// and injects the credential; the code's own fetch() never matches that rule), caps the
// answer, and records the call: operation, argument digest, decision, status, bytes,
// duration. An MCP server's live tool list must hash to the pinned one before a run's first
// call reaches it.

import { WorkerEntrypoint } from "cloudflare:workers";
import { egressSecrets } from "../config/index.ts";
import {
  connectorVia,
  type HttpOperation,
  type McpOperation,
  matchOperations,
  type Operation,
  operationDeclaration,
  validatorFor,
} from "../contracts/index.ts";
import { canonicalJson, sha256Hex } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import { type Redactor, redactor } from "../redaction/index.ts";
import { recordActivity } from "./activity-recorder.ts";
import { capabilityError, codeOf } from "./capability-error.ts";
import type { BindingContext, Outcome } from "./connector-answer.ts";
import { sendHttp } from "./connector-http.ts";
import { journaledCall } from "./connector-journal.ts";
import { sendMcp } from "./connector-mcp.ts";
import type { ConnectorProps } from "./runtime-profile.ts";

/** Redactors by contract rules, built once per isolate (the platform's secrets do not change while it lives). */
const redactors = new Map<string, Redactor>();

/** The arguments as JSON text, redacted: what the record keeps and an approver sees (the digest binds the original). */
function shownArguments(env: Env, props: ConnectorProps, args: unknown): string {
  const key = JSON.stringify(props.redaction ?? []);
  let redact = redactors.get(key);
  if (!redact) {
    redact = redactor({ secrets: egressSecrets(env), rules: props.redaction ?? [] });
    if (redactors.size > 100) redactors.clear();
    redactors.set(key, redact);
  }
  try {
    return canonicalJson(redact.json(args ?? null).value);
  } catch {
    return "(not JSON)";
  }
}

/** Operation calls of one run in flight at once in this isolate: each holds up to OPERATION_RESULT_MAX_BYTES of answer. */
export const OPERATIONS_IN_FLIGHT_MAX = 8;
const inFlight = new Map<string, number>();

/** The arguments' digest for the record; arguments JSON cannot express (NaN, a BigInt, a cycle) get none, and fail the schema check. */
async function digestOf(args: unknown): Promise<string | null> {
  try {
    return await sha256Hex(canonicalJson(args ?? null));
  } catch {
    return null;
  }
}

export class ConnectorBinding extends WorkerEntrypoint<Env, ConnectorProps> {
  // Only invoke() and describe() are methods: every method of an entrypoint is callable over RPC, helpers included.

  /** One operation call, decided and recorded whatever its outcome; a refusal is a typed error the code can read. */
  async invoke(operation: unknown, args: unknown): Promise<unknown> {
    // a call that has left finishes its bookkeeping (its record, its journal entry) even if the code stops waiting for it
    const call = callOnce(this.env, this.ctx, operation, args);
    this.ctx.waitUntil(call.catch(() => {}));
    return await call;
  }

  /**
   * On-demand discovery for a catalogue too large for the tool's description: the operations
   * this run may call (all, or those named), each with its TypeScript declaration,
   * description, effect and JSON Schemas. Touches no API, so nothing is recorded.
   */
  async describe(
    names?: unknown,
  ): Promise<Array<{ operation: string; declaration: string; description: string; effect: string; arguments: unknown; result: unknown }>> {
    const { operations } = this.ctx.props.connector;
    const all = Object.keys(operations);
    const wanted = Array.isArray(names) ? [...new Set(names.slice(0, all.length * 2).filter((name): name is string => typeof name === "string"))] : all;
    return wanted.flatMap((name) => {
      const operation = Object.hasOwn(operations, name) ? operations[name] : undefined;
      return operation
        ? [
            {
              operation: name,
              declaration: operationDeclaration(name, operation)
                .split("\n")
                .map((line) => line.trim())
                .join("\n"),
              description: operation.description,
              effect: operation.effect,
              arguments: operation.arguments,
              result: operation.result ?? null,
            },
          ]
        : [];
    });
  }
}

/** One operation call of `invoke`, decided and recorded whatever its outcome. */
async function callOnce(env: Env, ctx: BindingContext, operation: unknown, args: unknown): Promise<unknown> {
  const started = Date.now();
  const { props } = ctx;
  const { connector } = props;
  const name = typeof operation === "string" ? operation.slice(0, 64) : String(operation).slice(0, 64);
  const argsSha256 = await digestOf(args);
  const shown = shownArguments(env, props, args);
  const outcome: Outcome = { status: null, bytes: 0, args: shown.length > 1_000 ? `${shown.slice(0, 1_000)}…` : shown };
  const running = inFlight.get(props.runId) ?? 0;
  inFlight.set(props.runId, running + 1);
  let replayed = false;
  try {
    if (running >= OPERATIONS_IN_FLIGHT_MAX) {
      throw capabilityError("capability_denied", `at most ${OPERATIONS_IN_FLIGHT_MAX} operation calls of a run at once; await some before starting more`);
    }
    const granted = typeof operation === "string" && Object.hasOwn(connector.operations, operation) ? connector.operations[operation] : undefined;
    if (!granted) {
      throw capabilityError(
        "operation_not_granted",
        `${connector.name}.${name} is not an operation this run may call (granted: ${Object.keys(connector.operations).join(", ")})`,
      );
    }
    checkArguments(connector.name, name, granted, args ?? {});
    // the digest binds approvals and replays: arguments JSON cannot carry exactly (NaN, Infinity, a lone surrogate) are refused
    if (!argsSha256)
      throw capabilityError("invalid_request", `${connector.name}.${name}: the arguments must be plain JSON (no NaN, Infinity, lone surrogates or cycles)`);
    const journal = props.journal ? await journaledCall(env, props, props.journal, name, shown, argsSha256, outcome) : null;
    if (journal?.replayed) {
      replayed = true;
      await record(env, props, name, argsSha256, "replayed", null, outcome, started);
      if (!journal.replayed.ok) throw new Error(journal.replayed.message);
      return JSON.parse(journal.replayed.json) as unknown;
    }
    // a call that needs approval asks for it last, when it is about to leave (an MCP server's tool list checked)
    const approve = journal && connector.approve.includes(name) ? journal.approve : async () => {};
    let result: unknown;
    try {
      result =
        connector.kind === "http"
          ? await sendHttp(ctx, connector.baseUrl, name, granted as HttpOperation, args ?? {}, outcome, approve)
          : await sendMcp(ctx, connector.url, connector.toolsSha256, name, granted as McpOperation, args ?? {}, outcome, approve);
    } catch (error) {
      await journal?.settle(error);
      throw error;
    }
    await journal?.keep(result);
    await record(env, props, name, argsSha256, "allowed", null, outcome, started);
    return result;
  } catch (error) {
    const code = codeOf(error);
    if (replayed) throw error;
    await record(env, props, name, argsSha256, "denied", code, outcome, started);
    if (code === "internal_error") {
      logEvent("error", { event: "connector_failed", connector: connector.name, operation: name, error: String(error) });
      throw capabilityError("upstream_failed", `${connector.name}.${name} failed`);
    }
    throw error;
  } finally {
    const left = (inFlight.get(props.runId) ?? 1) - 1;
    if (left > 0) inFlight.set(props.runId, left);
    else inFlight.delete(props.runId);
  }
}

/** Nothing leaves with arguments the operation's JSON Schema refuses. */
function checkArguments(connector: string, name: string, operation: Operation, args: unknown): void {
  const checked = validatorFor(operation.arguments).validate(args);
  if (!checked.valid) {
    const first = checked.errors.at(-1);
    throw capabilityError("invalid_request", `${connector}.${name}: ${first ? `${first.instanceLocation} ${first.error}` : "invalid arguments"}`);
  }
}

function record(
  env: Env,
  props: ConnectorProps,
  operation: string,
  argsSha256: string | null,
  decision: "allowed" | "denied" | "replayed",
  reason: string | null,
  outcome: Outcome,
  started: number,
): Promise<void> {
  return recordActivity(env.SESSION_LEDGER, props, {
    kind: "capability",
    at: new Date(started).toISOString(),
    capability: connectorVia(props.connector.name),
    method: operation,
    decision,
    reason,
    durationMs: Math.max(0, Date.now() - started),
    ...(argsSha256 ? { argsSha256 } : {}),
    status: outcome.status,
    bytes: outcome.bytes,
    args: outcome.args,
    ...(props.operationPlan ? { drift: !inPlan(props.operationPlan, props.connector.name, operation) } : {}),
    ...(outcome.approvalId ? { approvalId: outcome.approvalId } : {}),
  });
}

/** Whether the declared operations name this one: `<connector>.<operation>`, a prefix ending in `*`, or `<connector>.*`. */
function inPlan(plan: readonly string[], connector: string, operation: string): boolean {
  return matchOperations(
    plan.flatMap((entry) => (entry.startsWith(`${connector}.`) ? [entry.slice(connector.length + 1)] : [])),
    [operation],
  ).includes(operation);
}
