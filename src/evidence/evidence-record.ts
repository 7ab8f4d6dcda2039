// The vocabulary of the evidence ledger. A run is two append-only records:
// `run.started`, written before anything executes, and `run.finished`, which points
// back to it. A start without a finish is a run that died half way.
import { z } from "zod";

export const TerminationReasonSchema = z.enum([
  "completed",
  "failed",
  "denied",
  "timed_out",
  "output_too_large",
  "egress_denied",
  "cancelled",
  "memory_exceeded",
]);
export type TerminationReason = z.infer<typeof TerminationReasonSchema>;

const Sha256Schema = z.string().regex(/^[0-9a-f]{64}$/);

/** A policy decision as it is recorded; the policy layer's Decision has exactly this shape. */
export const RecordedDecisionSchema = z.object({
  outcome: z.enum(["allow", "deny", "needs_approval"]),
  reasons: z.array(z.string().regex(/^[a-z][a-z0-9_]*$/)),
  dataClass: z.string().max(32),
  team: z.string().max(128).nullable(),
  scope: z.array(z.string().max(128)),
});
export type RecordedDecision = z.infer<typeof RecordedDecisionSchema>;

/** Where the task came from: an agent's MCP call, or a planner's signed task (fields null when unreadable). */
export const IntentSourceSchema = z.discriminatedUnion("source", [
  z.object({ source: z.literal("mcp") }),
  /** A task of a batch submitted over POST /v1/batches by the bearer (the start record's `batch` says which). */
  z.object({ source: z.literal("batch") }),
  z.object({
    source: z.literal("planner"),
    planner: z.string().max(128).nullable(),
    kid: z.string().max(256).nullable(),
    jti: z.string().max(128).nullable(),
    /** "accepted", or why the planner's signed task was refused. */
    verdict: z.string().regex(/^[a-z][a-z0-9_]*$/),
  }),
]);
export type IntentSource = z.infer<typeof IntentSourceSchema>;

/** The signed task the policy layer issued for the run, and what the runtime made of it. */
export const SignedTaskRecordSchema = z.object({
  jti: z.string().max(128),
  kid: z.string().max(256),
  expiresAt: z.int(),
  /** "accepted", or why the runtime refused it (e.g. task_replayed). */
  verdict: z.string().regex(/^[a-z][a-z0-9_]*$/),
});
const Name = z.string().min(1).max(128);

const RunHeader = {
  runId: z.string().regex(/^run_[0-9a-f-]{36}$/),
  tenant: Name,
  actor: Name,
  session: Name,
  contract: z.object({ id: Name, version: z.string().max(32), class: z.string().max(32) }),
  /** The snapshot (GET /v1/policy/{hash}) that decided; every record of the run carries it. */
  policyHash: Sha256Schema,
  /** Null when intake refused the call before policy was consulted (e.g. invalid arguments). */
  decision: RecordedDecisionSchema.nullable(),
};

/** One outbound attempt of a run's code or capability, as the egress gateway saw it. */
export const EgressActivitySchema = z.object({
  kind: z.literal("egress"),
  at: z.string().max(40),
  via: z.string().max(32),
  protocol: z.string().max(16),
  method: z.string().max(16).nullable(),
  /** scheme://host:port as asked for (never userinfo, never a query string). */
  destination: z.string().max(300),
  path: z.string().max(300).nullable(),
  decision: z.enum(["allowed", "denied"]),
  reason: z.string().max(64).nullable(),
  status: z.int().nullable(),
  bytesOut: z.int().min(0),
  /** As the upstream declared it (Content-Length); null when it declared none. */
  bytesIn: z.int().min(0).nullable(),
  durationMs: z.number().min(0),
  /** Outside the destinations the call declared; null when it declared none. */
  drift: z.boolean().nullable(),
  /** Names (never values) of headers the gateway injected. */
  injected: z.array(z.string().max(64)),
  /** Recorded after its run had finished (a response body read late, a request left running). */
  late: z.boolean().optional(),
});

/** One call of a capability binding, or of a connector's operation (capability `connector:<name>`, method the operation), allowed or refused. */
export const CapabilityActivitySchema = z.object({
  kind: z.literal("capability"),
  at: z.string().max(40),
  capability: z.string().max(32),
  method: z.string().max(64),
  /** replayed: a paused run's retry got the outcome recorded by the run before it; nothing was sent. */
  decision: z.enum(["allowed", "denied", "replayed"]),
  reason: z.string().max(64).nullable(),
  durationMs: z.number().min(0),
  /** A connector operation's arguments, as the SHA-256 of their canonical JSON (never the arguments themselves). */
  argsSha256: Sha256Schema.optional(),
  /** The arguments as JSON, redacted (built-in detectors, the platform's secrets, the contract's rules), cut at 1,000 characters. */
  args: z.string().max(1_100).optional(),
  /** A connector operation's HTTP status (null: nothing was sent) and answer size. */
  status: z.int().nullable().optional(),
  bytes: z.int().min(0).optional(),
  /** A connector operation call outside the run's declared plan of operations (absent: no plan declared). */
  drift: z.boolean().optional(),
  /** The approval of this one call (spent by it, or that it paused the run for). */
  approvalId: z.string().max(64).optional(),
  late: z.boolean().optional(),
});

export const ActivitySchema = z.discriminatedUnion("kind", [EgressActivitySchema, CapabilityActivitySchema]);
export type Activity = z.infer<typeof ActivitySchema>;
export type EgressActivity = z.infer<typeof EgressActivitySchema>;
export type CapabilityActivity = z.infer<typeof CapabilityActivitySchema>;

/** A run's activity, summarised into its finish record by the ledger (first 100 of each kept in full). */
export const ActivitySummarySchema = z.object({
  egress: z.object({
    attempts: z.array(EgressActivitySchema),
    total: z.int(),
    allowed: z.int(),
    denied: z.int(),
    drift: z.int(),
    bytesOut: z.int(),
    bytesIn: z.int(),
    truncated: z.boolean(),
    /**
     * Requests the ledger admitted to leave (at most limits.subRequests). One admitted but not
     * yet answered when the run finished shows here, though its own attempt is recorded late.
     */
    admitted: z.int().min(0).optional(),
  }),
  capabilities: z.object({
    calls: z.array(CapabilityActivitySchema),
    total: z.int(),
    denied: z.int(),
    /** Connector operation calls outside the declared plan (absent on records older than operation plans). */
    drift: z.int().optional(),
    truncated: z.boolean(),
  }),
});
export type ActivitySummary = z.infer<typeof ActivitySummarySchema>;

/** What the tenant's budget did with the call before it ran (absent on records older than budgets). */
export const BudgetRecordSchema = z.object({
  lane: z.enum(["interactive", "batch"]),
  /** The contract's backpressure mode. */
  mode: z.enum(["reject", "delay", "downgrade"]),
  /** granted at once, delayed (waited in the queue), downgraded, or rejected (over_budget: nothing ran). */
  outcome: z.enum(["granted", "delayed", "downgraded", "rejected"]),
  /** Time waited in the budget's queue (delay mode; batch work: since it was queued). */
  queuedMs: z.number().min(0),
  /** Runs of the lane in flight (in the pool used) when the slot was granted, or when it was refused. */
  inFlight: z.int().min(0),
  /**
   * Granted from a slot the isolate keeps in reserve (leased from the tenant's budget, which
   * counts it), without asking the budget; `inFlight` then counts that reserve's busy slots.
   */
  reserved: z.literal(true).optional(),
  /** rejected: why (budget_full, queue_full, wait_expired, downgrade_full) and when a retry can succeed. */
  reason: z.string().max(32).optional(),
  retryAfterMs: z.number().min(0).optional(),
  /** downgraded: the contract the call asked for; the record's `contract` is the one that ran. */
  downgradedFrom: z.object({ id: z.string().max(128), version: z.string().max(32) }).optional(),
});
export type BudgetRecord = z.infer<typeof BudgetRecordSchema>;

/** The human gate of a run whose contract needs approval: which request, and where it stood. */
export const ApprovalRecordSchema = z.object({
  id: z.string().max(64),
  /** requested (created by this call), pending (an earlier call's request, not decided yet), used (approved, spent by this run), rejected. */
  state: z.enum(["requested", "pending", "used", "rejected"]),
  decidedBy: z.string().max(128).optional(),
  reason: z.string().max(1_000).optional(),
});

/**
 * The runtime a run's code ran in: the engine (locally "workerd <npm version>", on Cloudflare
 * "cloudflare-workers"), the compatibility date and flags the sandbox was loaded with, and
 * the platform's own build (the Worker version, from its version metadata binding).
 */
export const RuntimeRecordSchema = z.object({
  engine: z.string().max(64),
  sandbox: z.object({ compatibilityDate: z.string().max(10), compatibilityFlags: z.array(z.string().max(64)).max(32) }),
  build: z.object({ id: z.string().max(64), tag: z.string().max(128), timestamp: z.string().max(40) }).nullable(),
});
export type RuntimeRecord = z.infer<typeof RuntimeRecordSchema>;

/**
 * How the caller proved who they are: a bearer JWT of the identity provider (its issuer and
 * token id), or a token of the built-in authorization server (the OAuth client it was issued
 * to, the grant, and where the person signed in).
 */
export const CredentialRecordSchema = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("jwt"), issuer: z.string().max(512), tokenId: z.string().max(256).optional() }),
  z.object({ kind: z.literal("oauth"), clientId: z.string().max(512), grant: z.string().max(64), signedInVia: z.string().max(256) }),
]);
export type CredentialRecord = z.infer<typeof CredentialRecordSchema>;

export const RunStartedSchema = z.object({
  kind: z.literal("run.started"),
  ...RunHeader,
  roles: z.array(z.string()),
  /** How the caller authenticated (absent in records from before it was kept, and for calls from the batch lane's stored owner). */
  credential: CredentialRecordSchema.optional(),
  lane: z.enum(["interactive", "batch"]),
  budget: BudgetRecordSchema.optional(),
  /** The approval gate, for a contract that needs a human approval. */
  approval: ApprovalRecordSchema.optional(),
  /** A batch task: its batch (GET /v1/batches/{id}) and position in it. */
  batch: z.object({ id: z.string().max(64), index: z.int().min(0) }).optional(),
  codeSha256: Sha256Schema,
  codeBytes: z.int().min(0),
  inputSha256: Sha256Schema,
  inputBytes: z.int().min(0),
  intent: IntentSourceSchema,
  /** Null when nothing was signed (the policy did not allow the task, or intake refused it). */
  task: SignedTaskRecordSchema.nullable(),
  /** The destinations the call declared it would reach; null when it declared none. */
  plan: z.object({ destinations: z.array(z.string().max(300)).max(64), operations: z.array(z.string().max(90)).max(64).optional() }).nullable(),
  /** The runtime profile the run gets: the capabilities in its env and how many egress rules apply. */
  profile: z.object({ capabilities: z.array(z.string().max(32)), egressRules: z.int().min(0) }),
  /** When the run must have ended (epoch ms); a start still open after it was cut off. */
  deadlineAt: z.int(),
  /** What ran the code, so a runtime advisory can be matched to runs (absent in records from before it was kept). */
  runtime: RuntimeRecordSchema.optional(),
  /** The W3C trace the run belongs to: the caller's (its span as parent), or one the run started (parent null). */
  trace: z
    .object({
      traceId: z.string().regex(/^[0-9a-f]{32}$/),
      parentSpanId: z
        .string()
        .regex(/^[0-9a-f]{16}$/)
        .nullable(),
      sampled: z.boolean(),
    })
    .optional(),
});

export const RunFinishedSchema = z.object({
  kind: z.literal("run.finished"),
  ...RunHeader,
  startSeq: z.int().min(1),
  termination: TerminationReasonSchema,
  /** The message is redacted; when something was, `messageSha256` is the SHA-256 of the original and `redacted` says which detectors fired. */
  error: z
    .object({
      code: z.string().max(64),
      message: z.string().max(1_000),
      messageSha256: z
        .string()
        .regex(/^[0-9a-f]{64}$/)
        .optional(),
      redacted: z.array(z.string().max(32)).max(32).optional(),
    })
    .optional(),
  latencyMs: z.object({
    /** Waiting for a budget slot (absent on records older than budgets). */
    queue: z.number().min(0).optional(),
    /** From `load()` to the sandbox's first instruction; null when no isolate started. */
    start: z.number().min(0).nullable(),
    /** From the sandbox's first instruction to its answer; null when no isolate started. */
    exec: z.number().min(0).nullable(),
    /** From receiving the call to knowing its outcome. */
    total: z.number().min(0),
  }),
  resultBytes: z.int().min(0).nullable(),
  logs: z.object({ lines: z.int().min(0), bytes: z.int().min(0), truncated: z.boolean() }),
  /** Filled in by the ledger from what it recorded while the run ran. */
  activity: ActivitySummarySchema.optional(),
  /** Set when the platform, not the run, closed it: the ledger's alarm past the deadline (the local supervisor did, before sandboxes had processes of their own). */
  reconciledBy: z.enum(["local_supervisor", "ledger_alarm"]).optional(),
  /** Set by the ledger on a finish that arrived after the run had already been closed (reconciled): the run outlived its deadline. */
  late: z.boolean().optional(),
});

/** A human decided an approval request; recorded in the requester's session, pointing at the run that asked. */
export const ApprovalDecidedSchema = z.object({
  kind: z.literal("approval.decided"),
  ...RunHeader,
  /** The approver (the record's `actor`) is never the requester. */
  approval: z.object({
    id: z.string().max(64),
    /** expired: the request was never decided, or its approval never used, before its expiry (actor "platform"). */
    verdict: z.enum(["approved", "rejected", "expired"]),
    reason: z.string().max(1_000),
    requester: Name,
    expiresAt: z.int(),
  }),
});

/**
 * A tenant's rollout phase was switched off by one of its rollback conditions (with the
 * figures that tripped it), or switched on again by a person. Recorded in the tenant's
 * `governance` session; `runId` is the event's own id, `contract.id` names the phase.
 */
export const RolloutChangedSchema = z.object({
  kind: z.literal("rollout.changed"),
  ...RunHeader,
  rollout: z.object({
    phase: z.int().min(1).max(3),
    action: z.enum(["rolled_back", "reenabled"]),
    metric: z.string().max(32).optional(),
    value: z.number().optional(),
    above: z.number().optional(),
    windowMinutes: z.int().optional(),
    runs: z.int().optional(),
    reason: z.string().max(1_000).optional(),
  }),
});

export const EvidenceEntrySchema = z.discriminatedUnion("kind", [RunStartedSchema, RunFinishedSchema, ApprovalDecidedSchema, RolloutChangedSchema]);
/** What a layer hands the ledger. */
export type EvidenceEntry = z.infer<typeof EvidenceEntrySchema>;
export type RunStarted = z.infer<typeof RunStartedSchema>;
export type RunFinished = z.infer<typeof RunFinishedSchema>;
export type ApprovalDecided = z.infer<typeof ApprovalDecidedSchema>;
export type ApprovalRecord = z.infer<typeof ApprovalRecordSchema>;

/**
 * What the ledger returns: the entry plus its position, the ledger's time and its links in
 * the session's hash chain (see chain.ts): `prevHash` is the previous record's `hash`, or
 * the session's genesis for the first.
 */
export type EvidenceRecord = EvidenceEntry & { seq: number; at: string; prevHash: string; hash: string };
