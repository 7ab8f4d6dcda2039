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
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { egressSecrets } from "../config/index.ts";
import {
  connectorVia,
  type HttpOperation,
  type McpOperation,
  matchOperations,
  type Operation,
  operationDeclaration,
  pathParameters,
  toolListSha256,
  validatorFor,
} from "../contracts/index.ts";
import { canonicalJson, sha256Hex, utf8Bytes } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import { type Redactor, redactor } from "../redaction/index.ts";
import { recordActivity } from "./activity-recorder.ts";
import { capabilityError, codeOf } from "./capability-error.ts";
import type { CallJournal, ConnectorProps } from "./runtime-profile.ts";

/** The largest answer an operation returns to the code. */
export const OPERATION_RESULT_MAX_BYTES = 1_048_576;

/** sent: the call's request left (or may have: a network failure after the gateway let it through). */
type Outcome = { status: number | null; bytes: number; args: string; approvalId?: string; replayed?: boolean; sent?: boolean };

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

type BindingContext = ExecutionContext<ConnectorProps> & { exports: Cloudflare.Exports };

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

type JournalOutcome = { ok: true; json: string } | { ok: false; message: string };

/** The most of an answer kept for a replay (a Durable Object row holds 2 MB; JSON text of a string answer can double). */
const JOURNALED_ANSWER_MAX = 900_000;

/** What an approver sees of a call's arguments, at most (larger arguments of a call that needs approval are refused). */
const APPROVAL_ARGUMENTS_MAX = 16_384;

type JournaledCall = {
  replayed?: JournalOutcome;
  /** Asks for the call's approval just before it leaves: spends one, or throws the pause or the rejection. */
  approve: () => Promise<void>;
  /** Journals what the call returned, for a retry to replay. */
  keep: (result: unknown) => Promise<void>;
  /** Journals the refusal it met (and gives its approval back if the gateway refused it: nothing left). */
  settle: (error: unknown) => Promise<void>;
};

/**
 * A call of a run that keeps a journal, asked of the tenant's approval desk before anything is
 * sent: replayed (its recorded outcome, nothing sent), refused because the run has paused or
 * ended, or let through, with `approve` for a call that needs approval. The arguments are
 * shown to the approver as canonical JSON, redacted, whole; the approval binds their digest.
 */
async function journaledCall(
  env: Env,
  props: ConnectorProps,
  journal: CallJournal,
  operation: string,
  shown: string,
  argsSha256: string,
  outcome: Outcome,
): Promise<JournaledCall> {
  const { connector, runId, tenant, session } = props;
  const desk = env.APPROVALS.getByName(`tenant:${tenant}`);
  const call = { connector: connector.name, operation, argsSha256 };
  const name = `${connector.name}.${operation}`;
  const needsApproval = connector.approve.includes(operation);
  if (needsApproval && shown.length > APPROVAL_ARGUMENTS_MAX) {
    throw capabilityError(
      "invalid_request",
      `${name}: arguments of a call that needs approval must be at most ${APPROVAL_ARGUMENTS_MAX} characters of JSON, so the approver sees them whole`,
    );
  }
  const ask = {
    ...call,
    key: await sha256Hex(canonicalJson({ format: "agent-exec/call-approval@1", task: journal.taskKey, ...call })),
    thread: journal.taskKey,
    runId,
    tenant,
    session,
    requester: journal.requester,
    contract: journal.contract,
    codeSha256: journal.codeSha256,
    inputSha256: journal.inputSha256,
    policyHash: journal.policyHash,
    dataClass: journal.dataClass,
    team: journal.team,
    ttlMs: journal.ttlMs,
    argsJson: shown,
    needsApproval,
  };
  const stopped = () => capabilityError("approval_required", `${name}: the run is paused for an approval (or over); it calls nothing more`);
  const first = await desk.callStep({ ...ask, phase: "replay" });
  if (first.step === "stopped") throw stopped();
  const seq = first.step === "run" ? first.seq : undefined;
  // the outcome goes into the record held for the call; a call that never left drops it (a retry runs it)
  const journaled = (what: JournalOutcome | null) =>
    seq === undefined
      ? Promise.resolve()
      : desk.journalCall({ runId, seq, outcome: what }).catch((error: unknown) => {
          logEvent("error", { event: "journal_failed", connector: connector.name, operation, error: String(error) });
        });
  const entry: JournaledCall = {
    approve: async () => {
      const step = await desk.callStep({ ...ask, phase: "approve" });
      if (step.step === "stopped") throw stopped();
      if (step.step === "pause") {
        outcome.approvalId = step.approvalId;
        throw capabilityError(
          "approval_required",
          `${name} needs a human approval of this exact call (approval ${step.approvalId}, arguments sha256 ${argsSha256}); the run is paused`,
        );
      }
      if (step.step === "rejected") {
        outcome.approvalId = step.approvalId;
        throw capabilityError("approval_rejected", `${name}: approval ${step.approvalId} of this call was rejected by ${step.decidedBy}: ${step.reason}`);
      }
      if (step.step === "run" && step.approvalId) outcome.approvalId = step.approvalId;
    },
    keep: async (result) => {
      const json = JSON.stringify(result ?? null);
      await journaled(
        json.length <= JOURNALED_ANSWER_MAX
          ? { ok: true, json }
          : { ok: false, message: `[upstream_failed] ${name} was done, but its answer was too large to keep for a replay; the call was not repeated` },
      );
    },
    settle: async (error) => {
      if (!outcome.sent) {
        // refused before it left: an approval it spent goes back, and nothing is kept to replay
        if (outcome.approvalId && codeOf(error) !== "approval_required" && codeOf(error) !== "approval_rejected") {
          await desk.restoreCallApproval(outcome.approvalId, runId).catch(() => {});
        }
        await journaled(null);
        return;
      }
      await journaled({ ok: false, message: error instanceof Error ? error.message : String(error) });
    },
  };
  if (first.step === "replay") entry.replayed = first.outcome;
  return entry;
}

/** Nothing leaves with arguments the operation's JSON Schema refuses. */
function checkArguments(connector: string, name: string, operation: Operation, args: unknown): void {
  const checked = validatorFor(operation.arguments).validate(args);
  if (!checked.valid) {
    const first = checked.errors.at(-1);
    throw capabilityError("invalid_request", `${connector}.${name}: ${first ? `${first.instanceLocation} ${first.error}` : "invalid arguments"}`);
  }
}

/** Builds the request inside the connector's base URL, sends it through the gateway, reads a capped answer. */
async function sendHttp(
  ctx: BindingContext,
  baseUrl: string,
  name: string,
  operation: HttpOperation,
  args: unknown,
  outcome: Outcome,
  approve: () => Promise<void>,
): Promise<unknown> {
  const { connector } = ctx.props;
  const values = args as Record<string, unknown>;
  const inPath = new Set(pathParameters(operation.path));
  const path = operation.path.replace(/\{([A-Za-z][A-Za-z0-9_]*)\}/g, (_, key: string) => {
    const value = String(values[key]);
    // encodeURIComponent keeps "." and "..", which the URL would resolve: a path value is one segment, never a step
    if (value === "" || value === "." || value === "..")
      throw capabilityError("invalid_request", `${connector.name}.${name}: ${key} must not be empty, "." or ".."`);
    return encodeURIComponent(value);
  });
  const base = new URL(baseUrl);
  const url = new URL(path, base);
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) {
    throw capabilityError("invalid_request", `${connector.name}.${name}: the arguments lead outside ${baseUrl}`);
  }
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (inPath.has(key)) continue;
    if (operation.query.includes(key)) {
      if (value !== undefined && value !== null) url.searchParams.set(key, typeof value === "string" ? value : JSON.stringify(value));
    } else body[key] = value;
  }
  const sendsBody = operation.method !== "GET" && operation.method !== "DELETE";
  const gateway = ctx.exports.EgressGateway({ props: { ...ctx.props, via: connectorVia(connector.name) } });
  await approve();
  outcome.sent = true;
  const response = await gateway.fetch(url, {
    method: operation.method,
    headers: { accept: "application/json", ...(sendsBody ? { "content-type": "application/json" } : {}) },
    ...(sendsBody ? { body: JSON.stringify(body) } : {}),
  });
  outcome.status = response.status;
  const denied = response.headers.get("x-egress-denied");
  if (denied) {
    outcome.sent = false;
    await response.body?.cancel();
    throw capabilityError("egress_denied", `${connector.name} at ${url.origin} is not reachable under this contract (${denied})`);
  }
  const text = await cappedText(response);
  outcome.bytes = text === null ? OPERATION_RESULT_MAX_BYTES + 1 : utf8Bytes(text);
  if (text === null) throw capabilityError("result_too_large", `${connector.name}.${name} answered more than ${OPERATION_RESULT_MAX_BYTES} bytes`);
  if (!response.ok) throw capabilityError("upstream_failed", `${connector.name}.${name}: the API answered ${response.status}`);
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** How long one request to an MCP server may take (the run's own wall-clock limit usually ends it first). */
const MCP_CALL_TIMEOUT_MS = 30_000;

/** Statuses whose response has no body. */
const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/** Runs whose MCP connector's live tool list was found to be the pinned one, in this isolate (key: run and connector; value: when). */
const verifiedRuns = new Map<string, number>();
const VERIFIED_KEEP_MS = 15 * 60_000;

/**
 * One tool call on an upstream MCP server, with the MCP SDK's client over Streamable HTTP,
 * every request through the egress gateway (the contract's rule injects the credential).
 * Before a run's first call the live tool list must hash to the pinned one: a changed list
 * (a new description, schema or tool, or one gone) refuses the call `connector_changed`
 * until the new list is pinned and in force as a new policy snapshot.
 */
async function sendMcp(
  ctx: BindingContext,
  endpoint: string,
  pinnedSha256: string,
  name: string,
  operation: McpOperation,
  args: unknown,
  outcome: Outcome,
  approve: () => Promise<void>,
): Promise<unknown> {
  const { connector, runId } = ctx.props;
  const gateway = ctx.exports.EgressGateway({ props: { ...ctx.props, via: connectorVia(connector.name) } });
  // a refusal met inside the transport's fetch, rethrown as it is (the SDK would wrap it)
  let refusal: Error | undefined;
  let calling = false;
  const fail = (error: Error): never => {
    refusal = error;
    throw error;
  };
  const throughGateway = async (url: string | URL, init?: RequestInit): Promise<Response> => {
    // a call is request and answer: the standalone GET stream for server-initiated messages is never opened
    if ((init?.method ?? "GET").toUpperCase() === "GET") return new Response(null, { status: 405 });
    // the tools/call request leaves here (or may have, if the fetch fails after the gateway let it through)
    if (calling) outcome.sent = true;
    const response = await gateway.fetch(url, init);
    outcome.status = response.status;
    const denied = response.headers.get("x-egress-denied");
    if (denied) {
      if (calling) outcome.sent = false;
      await response.body?.cancel();
      fail(capabilityError("egress_denied", `${connector.name} at ${new URL(endpoint).origin} is not reachable under this contract (${denied})`));
    }
    const text = await cappedText(response);
    outcome.bytes = text === null ? OPERATION_RESULT_MAX_BYTES + 1 : utf8Bytes(text);
    if (text === null) fail(capabilityError("result_too_large", `${connector.name}.${name} answered more than ${OPERATION_RESULT_MAX_BYTES} bytes`));
    return new Response(NULL_BODY_STATUSES.has(response.status) ? null : text, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
  const client = new Client({ name: "agent-exec-connector", version: "1.0.0" });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(endpoint), { fetch: throughGateway, redirectPolicy: "same-origin" }), {
      timeout: MCP_CALL_TIMEOUT_MS,
    });
    const key = `${runId}\n${connector.name}`;
    if (!verifiedRuns.has(key)) {
      const live = await liveToolsSha256(client);
      if (live !== pinnedSha256) {
        throw capabilityError(
          "connector_changed",
          `${connector.name}'s upstream tool list changed (pinned ${pinnedSha256.slice(0, 12)}…, live ${live.slice(0, 12)}…): its operations are refused until the new list is reviewed, pinned (npm run connectors:pin) and in force as a new policy snapshot`,
        );
      }
      const now = Date.now();
      for (const [stale, at] of verifiedRuns) if (now - at > VERIFIED_KEEP_MS) verifiedRuns.delete(stale);
      verifiedRuns.set(key, now);
    }
    await approve();
    calling = true;
    const result = await client.callTool({ name: operation.tool, arguments: args as Record<string, unknown> }, { timeout: MCP_CALL_TIMEOUT_MS });
    if (result.isError) throw capabilityError("upstream_failed", `${connector.name}.${name}: ${textOf(result.content).slice(0, 500) || "the tool failed"}`);
    return answerOf(result);
  } catch (error) {
    throw refusal ?? error;
  } finally {
    await client.close().catch(() => {});
  }
}

/** Every page of the upstream's tools/list, hashed as a pin is. */
async function liveToolsSha256(client: Client): Promise<string> {
  const tools: Array<Record<string, unknown>> = [];
  let cursor: string | undefined;
  for (let page = 0; page < 50; page++) {
    const listed = await client.listTools(cursor ? { cursor } : undefined, { timeout: MCP_CALL_TIMEOUT_MS });
    tools.push(...(listed.tools as Array<Record<string, unknown>>));
    cursor = listed.nextCursor;
    if (!cursor) break;
  }
  return toolListSha256(tools);
}

/** A tool's answer for the code: its structured content, else its text (parsed when it is JSON), else its content blocks. */
function answerOf(result: { content?: unknown; structuredContent?: unknown }): unknown {
  if (result.structuredContent !== undefined) return result.structuredContent;
  const content = Array.isArray(result.content) ? (result.content as Array<{ type?: string; text?: unknown }>) : [];
  if (content.length > 0 && content.every((block) => block.type === "text")) {
    const text = textOf(content);
    try {
      return JSON.parse(text);
    } catch {
      return text;
    }
  }
  return content;
}

function textOf(content: unknown): string {
  return Array.isArray(content)
    ? (content as Array<{ type?: string; text?: unknown }>)
        .filter((block) => block.type === "text" && typeof block.text === "string")
        .map((block) => block.text)
        .join("\n")
    : "";
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

/** The body as text, or null once it passes the cap (the rest is not read). */
async function cappedText(response: Response): Promise<string | null> {
  if (!response.body) return "";
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > OPERATION_RESULT_MAX_BYTES) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return new TextDecoder().decode(joined);
}
