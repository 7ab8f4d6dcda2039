// A connector: one of the organisation's HTTP APIs as named, typed operations a contract can
// grant. Declared once here as a zod schema; connectors/connector.schema.json is generated
// from it for editors. Each operation says what it does to the world (its effect), which is
// the action a tenant's policy scopes: `<connector>.read`, `<connector>.mutate`,
// `<connector>.privileged`.
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

export const OperationSchema = z
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
export type Operation = z.infer<typeof OperationSchema>;

export const ConnectorSchema = z
  .object({
    $schema: z.string().optional(),
    name: ConnectorNameSchema,
    description: z.string().min(1).max(1_000),
    kind: z.literal("http").describe("http: named operations on an HTTP API. (MCP servers as connectors are not built yet.)"),
    baseUrl: z
      .url({ protocol: /^https?$/ })
      .refine((url) => url.endsWith("/"), "must end with / (operation paths are relative to it)")
      .describe("Where the API lives; its host must be allowed by the granting contract's egress rules, which inject the credential."),
    operations: z
      .record(OperationNameSchema, OperationSchema)
      .refine((operations) => Object.keys(operations).length > 0, "at least one operation")
      .superRefine((operations, context) => {
        for (const name of Object.keys(operations).filter((key) => RESERVED_OPERATIONS.includes(key))) {
          context.addIssue({
            code: "custom",
            path: [name],
            message: `${name}: call and describe are the methods every connector has in ctx.env; name the operation otherwise`,
          });
        }
      }),
  })
  .strict();
export type Connector = z.infer<typeof ConnectorSchema>;

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
