// An mcp connector's operation: one tool call on the upstream MCP server with the MCP SDK's
// client over Streamable HTTP, every request through the egress gateway as the connector, after
// the run's first call found the live tool list to be the pinned one.

import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { connectorVia, type McpOperation, toolListSha256 } from "../contracts/index.ts";
import { utf8Bytes } from "../evidence/index.ts";
import { capabilityError } from "./capability-error.ts";
import { type BindingContext, cappedText, OPERATION_RESULT_MAX_BYTES, type Outcome } from "./connector-answer.ts";

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
export async function sendMcp(
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
