// Builds the McpServer for one request: one tool per capability contract, with
// annotations derived from the contract's workload class.
import { inputRequired, McpServer, type StandardSchemaWithJSON, type ToolAnnotations, UrlElicitationRequiredError } from "@modelcontextprotocol/server";
import { deskFor } from "../approval/index.ts";
import type { Connector, Contract, WorkloadClass } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { callDigests, type SubmitDeps, submitToolCall } from "../intent/index.ts";
import { toolError, toToolResult } from "./tool-result.ts";
import { advertiseOnly, CODE_SHAPE, connectorDocs, RUN_RESULT_SCHEMA, reachOf, toolInputSchema } from "./tool-schemas.ts";

export const SERVER_INFO = { name: "agent-exec", version: "0.1.0" } as const;

const ANNOTATIONS: Record<WorkloadClass, ToolAnnotations> = {
  "read-only": { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  "controlled-mutation": { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: true },
  privileged: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: true },
};

export function toolAnnotations(contract: Contract): ToolAnnotations {
  return { title: contract.title, ...ANNOTATIONS[contract.class] };
}

const INSTRUCTIONS =
  "Each tool is a capability contract that runs your JavaScript in a fresh, isolated sandbox and records evidence of the run. " +
  `Send \`code\`: ${CODE_SHAPE} What the code can reach differs by tool: each tool's description says. Pick the least privileged tool that can do the job.`;

// Schemas are built once per isolate, not per request: contracts do not change while it lives.
const inputSchemas = new WeakMap<Contract, StandardSchemaWithJSON>();
const descriptions = new WeakMap<Contract, string>();

/** A tool's description: the contract's, what its code can reach, what its connectors give it, its class. */
function descriptionOf(contract: Contract, connectors: readonly Connector[]): string {
  let description = descriptions.get(contract);
  if (description === undefined) {
    const docs = connectorDocs(contract, connectors);
    description = `${contract.description}\n\n${reachOf(contract)}${docs ? `\n\n${docs}` : ""}\n\nWorkload class: ${contract.class}; contract ${contract.id}@${contract.version}.`;
    descriptions.set(contract, description);
  }
  return description;
}
let outputSchema: StandardSchemaWithJSON | undefined;

function inputSchemaOf(contract: Contract): StandardSchemaWithJSON {
  let schema = inputSchemas.get(contract);
  if (!schema) {
    schema = advertiseOnly(toolInputSchema(contract));
    inputSchemas.set(contract, schema);
  }
  return schema;
}

export function createMcpServer(
  contracts: readonly Contract[],
  deps: SubmitDeps,
  identity: Identity | undefined,
  request: {
    origin?: string | undefined;
    legacy?: boolean;
    waitUntil?: ((promise: Promise<unknown>) => void) | undefined;
    /** The request's HTTP traceparent header, if any. */
    traceparent?: string | undefined;
  } = {},
): McpServer {
  const server = new McpServer(SERVER_INFO, { capabilities: { tools: { listChanged: false } }, instructions: INSTRUCTIONS });
  outputSchema ??= advertiseOnly(RUN_RESULT_SCHEMA);
  for (const contract of contracts) {
    server.registerTool(
      contract.tool,
      {
        title: contract.title,
        description: descriptionOf(contract, deps.connectors ?? []),
        inputSchema: inputSchemaOf(contract),
        outputSchema,
        annotations: toolAnnotations(contract),
        _meta: { "agent-exec/contract": { id: contract.id, version: contract.version, class: contract.class, phase: contract.phase } },
      },
      async (args: unknown, ctx) => {
        // The HTTP gate refuses tools/call without a verified token; this is the second lock.
        if (!identity) return toolError(new PlatformError("unauthorized", "tools/call needs a bearer token."));
        // A 2026-07-28 retry after an approval round echoes the state naming the task it was for: another task does not run.
        const stated = request.legacy ? undefined : ctx.mcpReq.requestState();
        if (typeof stated === "string") {
          const digests = await callDigests(args);
          if (!stated.endsWith(`.${digests.codeSha256}.${digests.inputSha256}`)) {
            return toolError(
              new PlatformError(
                "invalid_arguments",
                "The retry's requestState names another task than this call (its code or input differ); nothing was run.",
                {
                  hint: "Retry with the code and input of the call that asked for the approval, or call afresh without the state.",
                },
              ),
            );
          }
        }
        // a traceparent in the request's _meta wins over the HTTP header's
        const traceparent = ctx.mcpReq._meta?.traceparent ?? request.traceparent;
        const report = await submitToolCall(deps, contract, identity, args, {
          ...(request.origin ? { origin: request.origin } : {}),
          ...(request.waitUntil ? { waitUntil: request.waitUntil } : {}),
          ...(typeof traceparent === "string" ? { traceparent } : {}),
        });
        const gate = report.approval;
        const waiting = gate && (gate.state === "requested" || gate.state === "pending");
        // A 2026-07-28 client that can open a URL gets input_required: the approval page as a URL-mode
        // input request, and a state naming the exact task (approval, code and input hashes) its retry
        // echoes. The retry runs only if that approval of that task was given; the desk, not the state, decides.
        if (waiting && !request.legacy && declaresUrlElicitation(ctx.mcpReq.envelope)) {
          const message = `A human with the approver role must approve this exact task (approval ${gate.id}) on this page; the call then goes on by itself.`;
          return inputRequired({
            inputRequests: { [APPROVAL_INPUT]: inputRequired.elicitUrl({ url: gate.url, message }) },
            requestState: approvalState(gate),
          });
        }
        // A 2025-era client that declared URL-mode elicitation gets the protocol's own error pointing at the approval page.
        if (request.legacy && gate && waiting && (await deskFor(deps.approvals, identity.tenant).declaredUrlElicitation(identity.session))) {
          const message = `A human with the approver role must approve this exact task (approval ${gate.id}); nothing was run. Open the page, then call again with the same code and input.`;
          throw new UrlElicitationRequiredError([{ mode: "url", elicitationId: gate.id, url: gate.url, message }], message);
        }
        return toToolResult(report);
      },
    );
  }
  return server;
}

/** The key of the approval's URL-mode input request in an input_required result. */
const APPROVAL_INPUT = "approval";

/** The request state of an approval round: the exact task it binds (approval id, code and input hashes), echoed by the retry. */
function approvalState(gate: { id: string; codeSha256: string; inputSha256: string }): string {
  return `${gate.id}.${gate.codeSha256}.${gate.inputSha256}`;
}

/** Whether a 2026-07-28 request's envelope says its client can open a URL (URL-mode elicitation). */
function declaresUrlElicitation(envelope: unknown): boolean {
  const capabilities = (envelope as Record<string, unknown> | undefined)?.["io.modelcontextprotocol/clientCapabilities"] as
    | { elicitation?: { url?: unknown } }
    | undefined;
  return capabilities?.elicitation?.url !== undefined;
}
