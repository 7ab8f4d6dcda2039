// A run's side of its session ledger: one start record (spending the task's ids) and one
// finish record. Neither throws: a refusal or an unreachable ledger is logged and reported,
// so the caller decides (no start: nothing runs; no finish: the start stays as the trace
// of an unfinished run, which the ledger's alarm closes).
import type { PlatformError } from "../errors/index.ts";
import { logEvent } from "../log/index.ts";
import { type Redactor, redactedField } from "../redaction/index.ts";
import type { ActivitySummary, EvidenceEntry, RunStarted, TerminationReason } from "./evidence-record.ts";
import { ledgerFor } from "./ledger-stub.ts";
import type { SessionLedger, TaskId } from "./session-ledger.ts";

export type StartResult = { ok: true; seq: number; replayed: boolean } | { ok: false; detail: string };
/** What the ledger recorded for a finish: it has the last word on termination and activity. */
export type FinishResult = { termination: TerminationReason; activity: ActivitySummary };

export type RunLedger = {
  /** The start record, before any task code runs; `spend` ids are consumed with it (a replay is reported, not refused). */
  start(entry: RunStarted, spend: readonly TaskId[], reconcileGraceMs: number): Promise<StartResult>;
  /** The finish record: tried twice (the run already happened), undefined when it could not be written. */
  finish(entry: EvidenceEntry): Promise<FinishResult | undefined>;
};

export function runLedger(namespace: DurableObjectNamespace<SessionLedger>, tenant: string, session: string): RunLedger {
  const ledger = ledgerFor(namespace, tenant, session);
  const append = async (entry: EvidenceEntry, spend: readonly TaskId[], reconcileGraceMs?: number) => {
    let detail: string;
    try {
      const result = await ledger.append(entry, { consume: spend, ...(reconcileGraceMs === undefined ? {} : { reconcileGraceMs }) });
      if (result.ok) return { ok: true as const, seq: result.seq, replayed: result.replayed, finished: result.finished };
      detail = `${result.reason}: ${result.detail}`;
    } catch (error) {
      detail = String(error);
    }
    logEvent("error", { event: "evidence_write_failed", runId: entry.runId, stage: entry.kind, detail });
    return { ok: false as const, detail };
  };
  return {
    async start(entry, spend, reconcileGraceMs) {
      const result = await append(entry, spend, reconcileGraceMs);
      return result.ok ? { ok: true, seq: result.seq, replayed: result.replayed } : result;
    },
    async finish(entry) {
      for (let attempt = 0; attempt < 2; attempt++) {
        const result = await append(entry, []);
        if (result.ok) return result.finished;
      }
      return undefined;
    },
  };
}

/** A run's error as evidence keeps it: the message redacted, with the original's SHA-256 when anything was. */
export function evidenceError(error: PlatformError, redact: Redactor): { code: string; message: string; messageSha256?: string; redacted?: string[] } {
  const field = redactedField(redact, error.message);
  return {
    code: error.code,
    message: field.text.slice(0, 1_000),
    ...(field.sha256 ? { messageSha256: field.sha256, redacted: field.redacted } : {}),
  };
}
