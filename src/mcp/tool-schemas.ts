// The JSON Schemas a contract's tool advertises in tools/list. Arguments are
// validated by the intent layer (so a bad call gets our typed error and is
// recorded), so the input schema handed to the SDK only advertises.
import { fromJsonSchema, type JsonSchemaType, type StandardSchemaWithJSON } from "@modelcontextprotocol/server";
import { type Connector, type Contract, connectorDeclaration, DATA_CLASSES, matchOperations, operationAction } from "../contracts/index.ts";

export const CODE_SHAPE =
  "An ES module whose default export is a function `(input, ctx) => result` (it may be async). " +
  "`input` is the `input` argument; `ctx` holds `runId`, `contract` and `env` (the bindings this contract grants). " +
  "Return JSON data. console.log/info/warn/error/debug output is captured and returned.";

/** What a contract's code can reach, in one sentence for its tool: its egress rules and the capabilities that go out for it. */
export function reachOf(contract: Contract): string {
  const own = contract.egress.filter((rule) => rule.capability === undefined);
  const viaCapabilities = [
    ...new Set(contract.egress.flatMap((rule) => (rule.capability === undefined || rule.capability.startsWith("connector:") ? [] : [rule.capability]))),
  ];
  const code =
    own.length === 0
      ? "The code has no network access: fetch() and connect() to anywhere are refused (and recorded)."
      : `The code may reach only ${own.map((rule) => `${rule.protocol}://${rule.host}${rule.ports ? `:${rule.ports.join("|")}` : ""}${rule.paths ? ` (${rule.paths.join(", ")})` : ""}`).join(", ")}, at most ${contract.limits.subRequests} requests per call; anything else is refused and recorded.`;
  const bindings =
    contract.capabilities.length === 0
      ? ""
      : ` Capability bindings in ctx.env (when your grant covers them): ${contract.capabilities.join(", ")}${viaCapabilities.length > 0 ? `; ${viaCapabilities.join(", ")} reach their own service for you` : ""}.`;
  return code + bindings;
}

/** How many characters of connector declarations a tool's description carries; beyond it, the operations' names and describe(). */
export const DECLARATIONS_BUDGET = 4_000;

/**
 * What a contract's connector grants give the code, for its tool's description: the
 * TypeScript declarations of `ctx.env.<connector>` generated from the operations' schemas,
 * or, for a catalogue too large to carry, the operation names and how to ask for the rest.
 */
export function connectorDocs(contract: Contract, connectors: readonly Connector[]): string {
  const granted = contract.connectors.flatMap((grant) => {
    const connector = connectors.find((candidate) => candidate.name === grant.connector);
    return connector ? [{ connector, names: matchOperations(grant.operations, Object.keys(connector.operations)) }] : [];
  });
  if (granted.length === 0) return "";
  const intro = `Connectors in ctx.env: each method calls one operation of the organisation's API (arguments checked, the call recorded); you get those whose effect your grant's scope covers (${granted.map(({ connector }) => `${operationAction(connector.name, "read")}, ${operationAction(connector.name, "mutate")}`).join("; ")}).`;
  const declarations = granted.map(({ connector, names }) => connectorDeclaration(connector, names)).join("\n");
  if (declarations.length <= DECLARATIONS_BUDGET) return `${intro}\n\n\`\`\`ts\n${declarations}\n\`\`\``;
  const listed = granted.map(({ connector, names }) => `${connector.name} (${names.length}: ${names.join(", ")})`).join("; ");
  return `${intro} Operations: ${listed}. Their declarations are too many to list here: \`await ctx.env.<connector>.describe(["name", ...])\` (or \`describe()\` for all) in your code returns each one's TypeScript declaration, description, effect and JSON Schema.`;
}

export function toolInputSchema(contract: Contract): JsonSchemaType {
  return {
    type: "object",
    properties: {
      code: { type: "string", minLength: 1, description: `${CODE_SHAPE} ${reachOf(contract)} At most ${contract.limits.codeBytes} bytes.` },
      input: { ...contract.inputSchema, description: describeInput(contract) },
      dataClass: {
        type: "string",
        enum: [...DATA_CLASSES],
        description: `The most sensitive class of data in \`input\` (${DATA_CLASSES.join(" < ")}). Defaults to "${contract.dataClass.default}"; this contract accepts at most "${contract.dataClass.max}", and your grant may allow less.`,
      },
      plan: {
        type: "object",
        description:
          'What the code will reach, declared up front: destinations ("host", "host:port" or "scheme://host[:port]"; host may be "*.suffix") and connector operations ("<connector>.<operation>", or "<connector>.*"). Every outbound attempt and operation call outside them is flagged as drift in the evidence; an approver sees them.',
        properties: {
          destinations: { type: "array", items: { type: "string", minLength: 1, maxLength: 300 }, maxItems: 64 },
          operations: { type: "array", items: { type: "string", minLength: 3, maxLength: 90 }, maxItems: 64 },
        },
        additionalProperties: false,
      },
    },
    required: ["code"],
    additionalProperties: false,
  } as JsonSchemaType;
}

function describeInput(contract: Contract): string {
  const own = typeof contract.inputSchema.description === "string" ? `${contract.inputSchema.description} ` : "";
  return `${own}Passed to the code as its first argument; defaults to {}.`;
}

/** Every call answers with this envelope, errors included (clients validate both). */
export const RUN_RESULT_SCHEMA = {
  type: "object",
  properties: {
    runId: { type: "string", description: "Identifies the run in the session's evidence." },
    termination: { type: "string", enum: ["completed", "failed", "denied", "timed_out", "output_too_large", "egress_denied", "cancelled", "memory_exceeded"] },
    egress: {
      type: "object",
      description: "Outbound attempts of the run (the session's evidence lists each one).",
      properties: { attempts: { type: "integer" }, denied: { type: "integer" }, drift: { type: "integer" } },
    },
    budget: {
      type: "object",
      description: "What the tenant's concurrency budget did: granted, delayed (queuedMs), downgraded (contract ran instead of downgradedFrom) or rejected.",
      properties: {
        lane: { type: "string" },
        outcome: { type: "string", enum: ["granted", "delayed", "downgraded", "rejected"] },
        queuedMs: { type: "number" },
        contract: { type: "string" },
        downgradedFrom: { type: "string" },
      },
    },
    policyHash: { type: "string", description: "The policy snapshot that decided (GET /v1/policy/{hash})." },
    decision: {
      description: "The policy's decision; null when the call was refused before policy was consulted (e.g. invalid arguments).",
      anyOf: [
        {
          type: "object",
          properties: { outcome: { type: "string" }, reasons: { type: "array", items: { type: "string" } }, dataClass: { type: "string" } },
        },
        { type: "null" },
      ],
    },
    result: {
      description: "What the code returned (present when termination is completed): any JSON value.",
      anyOf: [{ type: "object", additionalProperties: true }, { type: "array" }, { type: "string" }, { type: "number" }, { type: "boolean" }, { type: "null" }],
    },
    error: {
      type: "object",
      properties: {
        code: { type: "string" },
        message: { type: "string" },
        hint: { type: "string" },
        retryAfterMs: { type: "integer", description: "over_budget: when a retry can succeed." },
      },
      required: ["code", "message", "hint"],
    },
    stack: { type: "string", description: "The sandbox's stack trace, when the code threw." },
    logs: {
      type: "array",
      items: {
        type: "object",
        properties: { level: { type: "string" }, message: { type: "string" } },
        required: ["level", "message"],
      },
    },
    logsTruncated: { type: "boolean" },
  },
  required: ["runId", "termination", "policyHash", "decision", "logs", "logsTruncated"],
} as const satisfies JsonSchemaType;

/** A Standard Schema that advertises `schema` but accepts any value: validation happens downstream. */
export function advertiseOnly(schema: JsonSchemaType): StandardSchemaWithJSON {
  const advertised = fromJsonSchema(schema)["~standard"];
  return { "~standard": { ...advertised, validate: (value: unknown) => ({ value }) } };
}
