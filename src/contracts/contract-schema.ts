// A capability contract, the unit a tool is made of. Declared once here as a zod
// schema; contracts/contract.schema.json is generated from it for editors.
import { z } from "zod";
import { ConnectorNameSchema } from "./connector-schema.ts";
import { canonicalHostName, isCloudMetadataName } from "./host-name.ts";

export const WorkloadClassSchema = z.enum(["read-only", "controlled-mutation", "privileged"]);
export type WorkloadClass = z.infer<typeof WorkloadClassSchema>;

/** Data classes, least to most sensitive. The order is the policy's: a bound of X admits X and below. */
export const DATA_CLASSES = ["public", "internal", "confidential", "restricted"] as const;
export const DataClassSchema = z.enum(DATA_CLASSES);
export type DataClass = z.infer<typeof DataClassSchema>;

export function dataClassRank(dataClass: DataClass): number {
  return DATA_CLASSES.indexOf(dataClass);
}

/** An action a contract's capabilities can take, e.g. `read`, `tracker.comment`; a grant scopes them. */
export const ActionSchema = z.string().regex(/^[a-z][a-z0-9_-]*(\.[a-z][a-z0-9_-]*)*$/, "dotted lowercase words, e.g. tracker.comment");

/** What the platform enforces per run. cpuMs is enforced by Cloudflare in production; subRequests by the egress gateway (and Cloudflare). */
export const LimitsSchema = z
  .object({
    cpuMs: z.int().min(1).max(300_000).default(50).describe("CPU time per run, enforced by the Cloudflare platform."),
    subRequests: z
      .int()
      .min(0)
      .max(10_000)
      .default(0)
      .describe("Outbound requests per run: the egress gateway refuses the next one (subrequest_limit, recorded); Cloudflare enforces it too in production."),
    wallMs: z.int().min(50).max(300_000).default(5_000).describe("Wall-clock deadline per run, enforced by the platform."),
    codeBytes: z.int().min(1).max(1_048_576).default(131_072).describe("Largest accepted module source, in UTF-8 bytes."),
    inputBytes: z.int().min(2).max(4_194_304).default(262_144).describe("Largest accepted `input`, as UTF-8 JSON bytes."),
    outputBytes: z.int().min(16).max(4_194_304).default(65_536).describe("Largest result, as UTF-8 JSON bytes; above it the run ends output_too_large."),
    logBytes: z.int().min(0).max(1_048_576).default(16_384).describe("Console output kept per run; the rest is dropped and flagged as truncated."),
  })
  .strict();
export type Limits = z.infer<typeof LimitsSchema>;

/** Capabilities the runtime implements; a contract grants some of them (src/execution/capabilities). */
export const CAPABILITY_NAMES = ["docs", "tracker"] as const;
export const CapabilityNameSchema = z.enum(CAPABILITY_NAMES);
export type CapabilityName = z.infer<typeof CapabilityNameSchema>;

/** Only variables with this prefix may be injected into outbound requests: never the platform's own keys. */
export const EGRESS_SECRET_PATTERN = /^EGRESS_[A-Z0-9_]{1,64}$/;
const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** One destination the contract's code (or one of its capabilities) may reach. */
export const EgressRuleSchema = z
  .object({
    host: z
      .string()
      .max(253)
      // Written any way a person would (case, IDNA, a trailing dot); kept as requests carry it.
      .transform((host, context) => {
        const canonical = canonicalHostName(host);
        if (canonical === null) context.addIssue({ code: "custom", message: "not a host name" });
        return canonical ?? host;
      })
      .pipe(
        z
          .string()
          .regex(
            /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$/,
            'a host name, "*.suffix", an IPv4 literal or a bracketed IPv6 literal',
          )
          .refine((host) => !isCloudMetadataName(host), "a cloud metadata service's name: always denied, never a rule"),
      )
      .describe(
        "Exact host, or *.suffix for any subdomain (not the bare suffix); case, IDNA and a trailing dot are normalised. Private and loopback addresses only match when named literally; cloud metadata names never.",
      ),
    protocol: z.enum(["https", "http", "tcp"]),
    ports: z.array(z.int().min(1).max(65_535)).min(1).optional().describe("Allowed ports; default 443 for https, 80 for http. Required for tcp."),
    methods: z.array(z.enum(HTTP_METHODS)).min(1).optional().describe("Allowed HTTP methods; default GET and HEAD."),
    paths: z
      .array(z.string().regex(/^\/[^?#]*$/, "a path prefix starting with /"))
      .min(1)
      .optional()
      .describe("Allowed path prefixes."),
    inject: z
      .object({
        header: z.string().regex(/^[a-z][a-z0-9-]*$/, "a lowercase header name"),
        secret: z.string().regex(EGRESS_SECRET_PATTERN, "a variable named EGRESS_*"),
        format: z.string().includes("{secret}").default("{secret}").describe('How the header value is built, e.g. "Bearer {secret}".'),
      })
      .strict()
      .optional()
      .describe("A secret the gateway adds to matching requests; the sandboxed code never sees it."),
    capability: z
      .union([CapabilityNameSchema, z.templateLiteral(["connector:", ConnectorNameSchema])])
      .optional()
      .describe("When set, only this capability's (or \"connector:<name>\"'s) requests match the rule, never the code's own fetch()."),
  })
  .strict()
  .refine((rule) => rule.protocol !== "tcp" || (rule.ports !== undefined && !rule.methods && !rule.paths && !rule.inject), {
    message: "a tcp rule needs ports and takes no methods, paths or inject",
  })
  .refine((rule) => rule.protocol === "tcp" || !rule.inject || rule.protocol === "https", {
    message: "a rule that injects a secret must be https: a credential never goes out in clear",
    path: ["inject"],
  });
export type EgressRule = z.infer<typeof EgressRuleSchema>;

const JsonObjectSchemaSchema = z
  .record(z.string(), z.unknown())
  .refine((schema) => schema.type === "object", { message: 'the input schema must describe an object ("type": "object")' });

/**
 * What happens to a call when its tenant's budget for the lane is full: `reject` at once
 * (over_budget with retryAfterMs), `delay` in a bounded FIFO queue up to `maxWaitMs` then
 * reject, or `downgrade` to run under the cheaper contract `downgradeTo` (its own small pool).
 */
export const BackpressureSchema = z
  .object({
    mode: z.enum(["reject", "delay", "downgrade"]).describe("What a call gets when the tenant's budget for its lane is full."),
    maxWaitMs: z.int().min(1).max(30_000).default(2_000).describe("delay: the longest a call waits in the queue before it is rejected."),
    downgradeTo: z
      .string()
      .regex(/^[a-z][a-z0-9-]{1,62}$/)
      .optional()
      .describe("downgrade: the id of the cheaper contract (tighter limits, a subset of capabilities and egress) the call runs under instead."),
  })
  .strict()
  .refine((b) => (b.mode === "downgrade") === (b.downgradeTo !== undefined), {
    message: "downgradeTo names the cheaper contract exactly when the mode is downgrade",
    path: ["downgradeTo"],
  });
export type Backpressure = z.infer<typeof BackpressureSchema>;

/** A contract's own redaction rules, beside the built-in detectors (src/redaction). */
export const RedactionSchema = z
  .object({
    rules: z
      .array(
        z
          .object({
            name: z.string().regex(/^[a-z][a-z0-9_]{0,31}$/, "lowercase letters, digits and _"),
            pattern: z
              .string()
              .min(1)
              .max(500)
              .refine((p) => {
                try {
                  new RegExp(p, "g");
                  return true;
                } catch {
                  return false;
                }
              }, "not a valid regular expression")
              .optional()
              .describe("A JavaScript regular expression; what it matches is redacted wherever it appears."),
            path: z
              .string()
              .regex(/^\$(\.([A-Za-z_][A-Za-z0-9_-]*|\*))+$/, 'a JSON path such as $.password or $.users.*.token ("*": any key or index)')
              .optional()
              .describe("A JSON path; the whole value there is redacted (in input and result)."),
          })
          .strict()
          .refine((rule) => (rule.pattern === undefined) !== (rule.path === undefined), "a rule has exactly one of pattern or path"),
      )
      .max(32)
      .default([])
      .describe("Extra rules to redact, each named: a regular expression (pattern) or a JSON path (path)."),
    result: z.boolean().default(false).describe("Redact the caller's result, console output and error too (evidence and logs always are)."),
  })
  .strict();

export const ContractSchema = z
  .object({
    $schema: z.string().optional(),
    id: z.string().regex(/^[a-z][a-z0-9-]{1,62}$/, "lowercase letters, digits and dashes, starting with a letter"),
    version: z.string().regex(/^\d+\.\d+\.\d+$/, "a semantic version such as 1.0.0"),
    tool: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, "an MCP tool name: lowercase letters, digits and underscores"),
    title: z.string().min(1).max(100),
    description: z.string().min(1).max(4_000),
    class: WorkloadClassSchema,
    phase: z.union([z.literal(1), z.literal(2), z.literal(3)]).describe("Rollout phase: 1 read-only, 2 low-risk writes, 3 production with approvals."),
    inputSchema: JsonObjectSchemaSchema.describe("JSON Schema of the `input` argument handed to the code."),
    limits: LimitsSchema.default(LimitsSchema.parse({})),
    approval: z
      .object({
        required: z.boolean(),
        ttlMinutes: z.int().min(1).max(1_440).default(15).describe("How long an approval request (and an approval not yet used) stays valid."),
      })
      .strict()
      .default({ required: false, ttlMinutes: 15 }),
    dataClass: z
      .object({
        max: DataClassSchema.describe("The most sensitive data class this contract may process."),
        default: DataClassSchema.describe("The class assumed when a call declares none (never silently public)."),
      })
      .strict()
      .default({ max: "internal", default: "internal" }),
    actions: z.array(ActionSchema).max(64).default([]).describe("What the contract's capabilities can do; a grant's action scope selects from these."),
    capabilities: z
      .array(CapabilityNameSchema)
      .max(8)
      .default([])
      .describe("RPC bindings placed in the sandbox's env, if the grant's action scope covers them."),
    connectors: z
      .array(
        z
          .object({
            connector: ConnectorNameSchema,
            operations: z
              .array(z.string().regex(/^(\*|[a-z][A-Za-z0-9]{0,63}\*?)$/, "an operation name, or a prefix ending in *"))
              .min(1)
              .max(64),
            approve: z
              .array(z.string().regex(/^(\*|[a-z][A-Za-z0-9]{0,63}\*?)$/, "an operation name, or a prefix ending in *"))
              .max(64)
              .default([])
              .describe("Granted operations that pause the run for a human's approval of each call, as privileged ones always do."),
          })
          .strict(),
      )
      .max(16)
      .default([])
      .describe(
        "Connector operations (connectors/) the code may call as ctx.env.<connector>.<operation>(args), where the grant's action scope covers their effect (<connector>.read, <connector>.mutate, <connector>.privileged). A privileged operation, or one `approve` names, pauses the run for an approval of the exact call.",
      ),
    egress: z.array(EgressRuleSchema).max(64).default([]).describe("Where the code may connect; everything else is denied and recorded."),
    backpressure: BackpressureSchema.default({ mode: "reject", maxWaitMs: 2_000 }),
    redaction: RedactionSchema.default({ rules: [], result: false }),
    task: z
      .object({ ttlSeconds: z.int().min(5).max(900).default(60).describe("Validity window of the signed task the policy layer issues.") })
      .strict()
      .default({ ttlSeconds: 60 }),
  })
  .strict()
  .refine((c) => c.class !== "privileged" || c.approval.required, {
    message: "a privileged contract must require approval",
    path: ["approval", "required"],
  })
  .refine((c) => dataClassRank(c.dataClass.default) <= dataClassRank(c.dataClass.max), {
    message: "the default data class must not be above the maximum",
    path: ["dataClass", "default"],
  })
  .refine((c) => c.egress.length === 0 || c.limits.subRequests > 0, {
    message: "a contract with egress rules needs limits.subRequests of at least 1: the gateway admits no more outbound requests per run than that",
    path: ["limits", "subRequests"],
  });
export type Contract = z.infer<typeof ContractSchema>;

/** The JSON Schema editors use for contract files (contracts/contract.schema.json). */
export function contractJsonSchema(): Record<string, unknown> {
  return {
    ...z.toJSONSchema(ContractSchema, { io: "input", target: "draft-2020-12" }),
    title: "agent-exec capability contract",
  };
}
