// A connector: one of the organisation's HTTP APIs or MCP servers as named, typed operations
// a contract can grant. Declared once here as a zod schema; connectors/connector.schema.json
// is generated from it for editors. Each operation says what it does to the world (its
// effect), which is the action a tenant's policy scopes: `<connector>.read`,
// `<connector>.mutate`, `<connector>.privileged`. An MCP server's operations are its tools,
// with their schemas as pinned in the file (`npm run connectors:pin`): the pin's SHA-256 is
// what a run checks the live tool list against.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import canonicalize from "canonicalize";
import { z } from "zod";

/** A connector's name is how the code reaches it (`ctx.env.<name>`): a JavaScript identifier. */
export const ConnectorNameSchema = z
  .string()
  .regex(/^[a-z][A-Za-z0-9]{0,21}$/, "a lower-camel-case identifier (letters and digits, 1-22), the name code uses: ctx.env.<name>");

/** Who a connector's requests come from, for the egress gateway and the rules that let them out. */
export function connectorVia(name: string): `connector:${string}` {
  return `connector:${name}`;
}
/** An operation's name is the method code calls: `ctx.env.<connector>.<operation>(args)`. */
export const OperationNameSchema = z.string().regex(/^[a-z][A-Za-z0-9]{0,63}$/, "a lower-camel-case identifier (letters and digits, 1-64)");
/** The methods every connector has in ctx.env beside its operations. */
const RESERVED_OPERATIONS = ["call", "describe"];

export const EFFECTS = ["read", "mutate", "privileged"] as const;
export const EffectSchema = z.enum(EFFECTS);
export type Effect = z.infer<typeof EffectSchema>;

/** A JSON Schema, as written in the file (checked to be an object schema; validated against at call time). */
const JsonSchemaSchema = z.record(z.string(), z.unknown());

const PATH_PARAMETER = /\{([A-Za-z][A-Za-z0-9_]{0,63})\}/g;

export const HttpOperationSchema = z
  .object({
    description: z.string().min(1).max(1_000).describe("What the operation does, for the agent that calls it."),
    effect: EffectSchema.describe("read: changes nothing; mutate: low-risk, reversible changes; privileged: needs a human approval of the exact call."),
    method: z.enum(["GET", "POST", "PUT", "PATCH", "DELETE"]),
    path: z
      .string()
      .max(512)
      .regex(/^[A-Za-z0-9._~\-/{}]*$/, "a relative path with {parameter} placeholders (letters, digits, . _ ~ - /)")
      .refine((path) => !path.startsWith("/") && !path.split("/").includes(".."), "relative to the connector's baseUrl, without .. segments")
      .describe("Relative to baseUrl; {name} is replaced by the argument of that name, URL-encoded."),
    arguments: JsonSchemaSchema.default({ type: "object", properties: {}, additionalProperties: false }).describe(
      "JSON Schema (draft 2020-12) of the one argument object; checked before anything leaves. Path parameters must be required string or integer properties.",
    ),
    query: z
      .array(z.string().min(1).max(64))
      .max(32)
      .default([])
      .describe("Arguments sent as query parameters; the rest (path parameters aside) are the JSON body."),
    result: JsonSchemaSchema.optional().describe("JSON Schema of the answer, for the agent (documentation; the answer is size-capped, not validated)."),
  })
  .strict()
  .superRefine((operation, context) => {
    const properties = (operation.arguments.properties ?? {}) as Record<string, { type?: unknown } | undefined>;
    const required = Array.isArray(operation.arguments.required) ? (operation.arguments.required as unknown[]) : [];
    if (operation.arguments.type !== "object")
      context.addIssue({ code: "custom", path: ["arguments", "type"], message: 'the arguments schema must be of type "object"' });
    for (const [, name] of operation.path.matchAll(PATH_PARAMETER)) {
      const type = properties[name ?? ""]?.type;
      if (!name || !required.includes(name) || (type !== "string" && type !== "integer")) {
        context.addIssue({ code: "custom", path: ["path"], message: `path parameter {${name}} must be a required string or integer property of arguments` });
      }
    }
    for (const name of operation.query) {
      if (!(name in properties)) context.addIssue({ code: "custom", path: ["query"], message: `query parameter "${name}" is not a property of arguments` });
    }
  });
export type HttpOperation = z.infer<typeof HttpOperationSchema>;

/** What every operation has, whatever its kind: what the agent is told and what the binding checks. */
export type Operation = { description: string; effect: Effect; arguments: Record<string, unknown>; result?: Record<string, unknown> | undefined };

function operationsOf<T extends z.ZodType>(operation: T) {
  return z
    .record(OperationNameSchema, operation)
    .refine((operations) => Object.keys(operations).length > 0, "at least one operation")
    .superRefine((operations, context) => {
      for (const name of Object.keys(operations).filter((key) => RESERVED_OPERATIONS.includes(key))) {
        context.addIssue({
          code: "custom",
          path: [name],
          message: `${name}: call and describe are the methods every connector has in ctx.env; name the operation otherwise`,
        });
      }
    });
}

const HttpConnectorSchema = z
  .object({
    $schema: z.string().optional(),
    name: ConnectorNameSchema,
    description: z.string().min(1).max(1_000),
    kind: z.literal("http").describe("http: named operations on an HTTP API."),
    baseUrl: z
      .url({ protocol: /^https?$/ })
      .refine((url) => url.endsWith("/"), "must end with / (operation paths are relative to it)")
      .describe("Where the API lives; its host must be allowed by the granting contract's egress rules, which inject the credential."),
    operations: operationsOf(HttpOperationSchema),
  })
  .strict();
export type HttpConnector = z.infer<typeof HttpConnectorSchema>;

/** A tool of an upstream MCP server as pinned: what of `tools/list` an agent or a decision relies on. */
export const PinnedToolSchema = z
  .object({
    name: z.string().min(1).max(128),
    title: z.string().max(1_000).optional(),
    description: z.string().max(10_000).optional(),
    inputSchema: JsonSchemaSchema,
    outputSchema: JsonSchemaSchema.optional(),
    annotations: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();
export type PinnedTool = z.infer<typeof PinnedToolSchema>;

/** The fields of a tool the pin keeps (and hashes), in a listed tool of any protocol era. */
export function pinnedTool(tool: Record<string, unknown>): PinnedTool {
  const kept: Record<string, unknown> = {};
  for (const key of ["name", "title", "description", "inputSchema", "outputSchema", "annotations"]) if (tool[key] !== undefined) kept[key] = tool[key];
  return kept as PinnedTool;
}

/** SHA-256 of a tool list as pinned: the kept fields of each tool, sorted by name, as RFC 8785 canonical JSON. */
export function toolListSha256(tools: readonly Record<string, unknown>[]): string {
  const sorted = tools.map(pinnedTool).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return bytesToHex(sha256(utf8ToBytes(canonicalize(sorted) ?? "[]")));
}

const McpOperationFileSchema = z
  .object({
    tool: z.string().min(1).max(128).optional().describe("The upstream tool's name, when it is not the operation's (e.g. search_notes)."),
    effect: EffectSchema.describe("What the tool does to the world, as this organisation judges it (the upstream's annotations are hints, not policy)."),
    description: z.string().min(1).max(1_000).optional().describe("Replaces the upstream's description of the tool for the agent."),
  })
  .strict();

const McpConnectorSchema = z
  .object({
    $schema: z.string().optional(),
    name: ConnectorNameSchema,
    description: z.string().min(1).max(1_000),
    kind: z.literal("mcp").describe("mcp: an upstream MCP server over Streamable HTTP; its tools are the operations."),
    url: z
      .url({ protocol: /^https?$/ })
      .describe("The server's MCP endpoint; its host must be allowed by the granting contract's egress rules, which inject the credential."),
    operations: operationsOf(McpOperationFileSchema).describe("The upstream tools this connector offers, by the name code calls them."),
    pinned: z
      .object(
        {
          sha256: z.string().regex(/^[0-9a-f]{64}$/),
          pinnedAt: z.string().max(64),
          tools: z.array(PinnedToolSchema).max(1_000),
        },
        {
          error: (issue) =>
            issue.input === undefined ? "missing: npm run connectors:pin -- <name> fetches the upstream's tool list and pins it here" : undefined,
        },
      )
      .strict()
      .describe("The upstream's tool list as reviewed, written by `npm run connectors:pin -- <file>`; runs are refused while the live list hashes otherwise."),
  })
  .strict()
  .superRefine((connector, context) => {
    if (toolListSha256(connector.pinned.tools) !== connector.pinned.sha256) {
      context.addIssue({
        code: "custom",
        path: ["pinned", "sha256"],
        message: "is not the SHA-256 of pinned.tools: pin again (npm run connectors:pin) rather than editing the list",
      });
    }
    const names = new Set(connector.pinned.tools.map((tool) => tool.name));
    for (const [name, operation] of Object.entries(connector.operations)) {
      const tool = operation.tool ?? name;
      if (!names.has(tool)) {
        context.addIssue({
          code: "custom",
          path: ["operations", name, "tool"],
          message: `the upstream has no tool "${tool}" in the pinned list (${[...names].join(", ") || "none"})`,
        });
      }
    }
    for (const tool of connector.pinned.tools) {
      if (tool.inputSchema.type !== "object")
        context.addIssue({ code: "custom", path: ["pinned", "tools"], message: `${tool.name}: inputSchema must be of type "object"` });
    }
  });
type McpConnectorFile = z.infer<typeof McpConnectorSchema>;

/** A connector file. */
export const ConnectorSchema = z.discriminatedUnion("kind", [HttpConnectorSchema, McpConnectorSchema]);

/** An MCP connector's operation as a run uses it: the upstream tool it calls, its schemas as pinned. */
export type McpOperation = Operation & { tool: string };
export type McpConnector = Omit<McpConnectorFile, "operations" | "$schema"> & { operations: Record<string, McpOperation> };
/** A connector as loaded: an MCP connector's operations carry their pinned tools' schemas. */
export type Connector = Omit<HttpConnector, "$schema"> | McpConnector;

/** The loaded form of a parsed file: an MCP operation takes its tool's description and schemas from the pin. */
export function resolveConnector(file: z.infer<typeof ConnectorSchema>): Connector {
  const { $schema: _, ...connector } = file;
  if (connector.kind === "http") return connector;
  const tools = new Map(connector.pinned.tools.map((tool) => [tool.name, tool]));
  const operations: Record<string, McpOperation> = {};
  for (const [name, operation] of Object.entries(connector.operations)) {
    const tool = tools.get(operation.tool ?? name);
    if (!tool) continue;
    operations[name] = {
      tool: tool.name,
      description: operation.description ?? tool.description ?? tool.title ?? tool.name,
      effect: operation.effect,
      arguments: tool.inputSchema,
      ...(tool.outputSchema ? { result: tool.outputSchema } : {}),
    };
  }
  return { ...connector, operations };
}

/** Where a connector's requests go: an HTTP API's base URL, an MCP server's endpoint. */
export function connectorEndpoint(connector: { kind: "http"; baseUrl: string } | { kind: "mcp"; url: string }): string {
  return connector.kind === "http" ? connector.baseUrl : connector.url;
}

/** The parameters a path template names, in order. */
export function pathParameters(path: string): string[] {
  return [...path.matchAll(PATH_PARAMETER)].map((match) => match[1] ?? "");
}

/** The action a policy grants for an operation of this effect on this connector. */
export function operationAction(connector: string, effect: Effect): string {
  return `${connector.toLowerCase()}.${effect}`;
}

/** Operation names a grant's patterns select: exact names, or a prefix with a trailing `*` (`list*`, `*`). */
export function matchOperations(patterns: readonly string[], names: readonly string[]): string[] {
  return names.filter((name) => patterns.some((pattern) => (pattern.endsWith("*") ? name.startsWith(pattern.slice(0, -1)) : name === pattern)));
}

/** The JSON Schema editors use for connector files (connectors/connector.schema.json). */
export function connectorJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ConnectorSchema, { io: "input", target: "draft-2020-12" }),
    title: "agent-exec connector",
  };
}
