// Evidence: what happened, per session, append-only. The lowest layer.
export { genesisHash, LEDGER_FORMAT, recordHash, sha256HexSync } from "./chain.ts";
export { canonicalJson, sha256Hex, utf8Bytes } from "./digest.ts";
export {
  BUNDLE_FORMAT,
  type BundleRecord,
  type EvidenceBundle,
  EvidenceBundleSchema,
  EXPORT_ISSUER,
  EXPORT_TYPE,
  type ExportClaims,
  type Jwks,
  NO_POLICY_HASH,
} from "./evidence-bundle.ts";
export {
  type Activity,
  ActivitySchema,
  type ActivitySummary,
  type ApprovalDecided,
  type ApprovalRecord,
  type BudgetRecord,
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
export { type JwtSigner, jwtSigner, type SigningKey } from "./jwt-signer.ts";
export { ledgerFor } from "./ledger-stub.ts";
// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only,
// so this index stays importable from Node (tests, the local tools).
export { PAGE_LIMIT_MAX } from "./page-limit.ts";
export type { AppendOptions, AppendResult, ChainHead, EvidencePage, PageResult, SessionLedger, TaskId } from "./session-ledger.ts";
export { type ClosedRun, closingRecord } from "./unfinished-runs.ts";
export { type Problem, type ProblemCode, type VerifyOptions, type VerifyReport, verifyBundle } from "./verify-bundle.ts";
