// Evidence: what happened, per session, append-only, hash-chained and signed on export.
// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only,
// so this index stays importable from Node (tests, the local tools).
export { genesisHash, recordHash, sha256HexSync } from "./chain.ts";
export { canonicalJson, sha256Hex, utf8Bytes } from "./digest.ts";
export {
  BUNDLE_FORMAT,
  BUNDLE_FORMAT_V1,
  type EvidenceBundle,
  EXPORT_ISSUER,
  EXPORT_TYPE,
  type ExportClaims,
  type Jwks,
  NO_POLICY_HASH,
} from "./evidence-bundle.ts";
export {
  type Activity,
  type ActivitySummary,
  type ApprovalRecord,
  type BudgetRecord,
  CredentialRecordSchema,
  type EgressActivity,
  type EvidenceEntry,
  type EvidenceRecord,
  type IntentSource,
  type RunStarted,
  type RuntimeRecord,
  type TerminationReason,
  TerminationReasonSchema,
} from "./evidence-record.ts";
export { type JwtSigner, jwtSigner } from "./jwt-signer.ts";
export { ledgerFor, readLedger } from "./ledger-stub.ts";
export { PAGE_LIMIT_MAX } from "./page-limit.ts";
export { evidenceError, type RunLedger, runLedger } from "./run-ledger.ts";
export type { BrokenRecord, EgressAdmission, RangeCheck, SessionLedger, TaskId } from "./session-ledger.ts";
export { verifyBundle, verifySeries } from "./verify-bundle.ts";
