// Builds the McpServer for one request: one tool per capability contract, with
// annotations derived from the contract's workload class.
import { McpServer, type StandardSchemaWithJSON, type ToolAnnotations, UrlElicitationRequiredError } from "@modelcontextprotocol/server";
import { deskFor } from "../approval/index.ts";
import type { Contract, WorkloadClass } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { type SubmitDeps, submitToolCall } from "../intent/index.ts";
import { toolError, toToolResult } from "./tool-result.ts";
import { advertiseOnly, CODE_SHAPE, RUN_RESULT_SCHEMA, reachOf, toolInputSchema } from "./tool-schemas.ts";

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
        description: `${contract.description}\n\n${reachOf(contract)}\n\nWorkload class: ${contract.class}; contract ${contract.id}@${contract.version}.`,
        inputSchema: inputSchemaOf(contract),
        outputSchema,
        annotations: toolAnnotations(contract),
        _meta: { "agent-exec/contract": { id: contract.id, version: contract.version, class: contract.class, phase: contract.phase } },
      },
      async (args: unknown, ctx) => {
        // The HTTP gate refuses tools/call without a verified token; this is the second lock.
        if (!identity) return toolError(new PlatformError("unauthorized", "tools/call needs a bearer token."));
        // a traceparent in the request's _meta wins over the HTTP header's
        const traceparent = ctx.mcpReq._meta?.traceparent ?? request.traceparent;
        const report = await submitToolCall(deps, contract, identity, args, {
          ...(request.origin ? { origin: request.origin } : {}),
          ...(request.waitUntil ? { waitUntil: request.waitUntil } : {}),
          ...(typeof traceparent === "string" ? { traceparent } : {}),
        });
        // A 2025-era client that declared URL-mode elicitation gets the protocol's own error pointing at the approval page.
        const gate = report.approval;
        if (
          request.legacy &&
          gate &&
          (gate.state === "requested" || gate.state === "pending") &&
          (await deskFor(deps.approvals, identity.tenant).declaredUrlElicitation(identity.session))
        ) {
          const message = `A human with the approver role must approve this exact task (approval ${gate.id}); nothing was run. Open the page, then call again with the same code and input.`;
          throw new UrlElicitationRequiredError([{ mode: "url", elicitationId: gate.id, url: gate.url, message }], message);
        }
        return toToolResult(report);
      },
    );
  }
  return server;
}
