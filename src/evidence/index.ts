// Evidence: what happened, per session, append-only. The lowest layer.
export { canonicalJson, sha256Hex, utf8Bytes } from "./digest.ts";
export {
  type Decision,
  DecisionSchema,
  type EvidenceEntry,
  EvidenceEntrySchema,
  type EvidenceRecord,
  type RunFinished,
  type RunStarted,
  type TerminationReason,
  TerminationReasonSchema,
} from "./evidence-record.ts";
export { ledgerFor } from "./ledger-stub.ts";
export { type AppendResult, type EvidencePage, PAGE_LIMIT_MAX, type PageResult, SessionLedger } from "./session-ledger.ts";
