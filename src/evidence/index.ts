// Evidence: what happened, per session, append-only. The lowest layer.
export { canonicalJson, sha256Hex, utf8Bytes } from "./digest.ts";
export {
  type Activity,
  ActivitySchema,
  type ActivitySummary,
  type CapabilityActivity,
  type EgressActivity,
  type EvidenceEntry,
  EvidenceEntrySchema,
  type EvidenceRecord,
  type IntentSource,
  IntentSourceSchema,
  type RecordedDecision,
  RecordedDecisionSchema,
  type RunFinished,
  type RunStarted,
  type TerminationReason,
  TerminationReasonSchema,
} from "./evidence-record.ts";
export { ledgerFor } from "./ledger-stub.ts";
// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only,
// so this index stays importable from Node (tests, the local tools).
export { PAGE_LIMIT_MAX } from "./page-limit.ts";
export type { AppendResult, EvidencePage, PageResult, SessionLedger, TaskId } from "./session-ledger.ts";
export { type ClosedRun, closingRecord, type LossCause } from "./unfinished-runs.ts";
