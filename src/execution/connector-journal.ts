// A connector call of a run that keeps a journal (src/approval's desk holds it): replayed
// from the run's source, refused once the run has paused or ended, or let through, asking for
// its approval just before it leaves when it needs one, and journaled with its outcome.

import { canonicalJson, sha256Hex } from "../evidence/index.ts";
import { logEvent } from "../log/index.ts";
import { capabilityError, codeOf } from "./capability-error.ts";
import type { Outcome } from "./connector-answer.ts";
import type { CallJournal, ConnectorProps } from "./runtime-profile.ts";

export type JournalOutcome = { ok: true; json: string } | { ok: false; message: string };

/** The most of an answer kept for a replay (a Durable Object row holds 2 MB; JSON text of a string answer can double). */
const JOURNALED_ANSWER_MAX = 900_000;

/** What an approver sees of a call's arguments, at most (larger arguments of a call that needs approval are refused). */
const APPROVAL_ARGUMENTS_MAX = 16_384;

export type JournaledCall = {
  replayed?: JournalOutcome;
  /** Asks for the call's approval just before it leaves: spends one, or throws the pause or the rejection. */
  approve: () => Promise<void>;
  /** Journals what the call returned, for a retry to replay. */
  keep: (result: unknown) => Promise<void>;
  /** Journals the refusal it met (and gives its approval back if the gateway refused it: nothing left). */
  settle: (error: unknown) => Promise<void>;
};

/**
 * A call of a run that keeps a journal, asked of the tenant's approval desk before anything is
 * sent: replayed (its recorded outcome, nothing sent), refused because the run has paused or
 * ended, or let through, with `approve` for a call that needs approval. The arguments are
 * shown to the approver as canonical JSON, redacted, whole; the approval binds their digest.
 */
export async function journaledCall(
  env: Env,
  props: ConnectorProps,
  journal: CallJournal,
  operation: string,
  shown: string,
  argsSha256: string,
  outcome: Outcome,
): Promise<JournaledCall> {
  const { connector, runId, tenant, session } = props;
  const desk = env.APPROVALS.getByName(`tenant:${tenant}`);
  const call = { connector: connector.name, operation, argsSha256 };
  const name = `${connector.name}.${operation}`;
  const needsApproval = connector.approve.includes(operation);
  if (needsApproval && shown.length > APPROVAL_ARGUMENTS_MAX) {
    throw capabilityError(
      "invalid_request",
      `${name}: arguments of a call that needs approval must be at most ${APPROVAL_ARGUMENTS_MAX} characters of JSON, so the approver sees them whole`,
    );
  }
  const ask = {
    ...call,
    key: await sha256Hex(canonicalJson({ format: "agent-exec/call-approval@1", task: journal.taskKey, ...call })),
    thread: journal.taskKey,
    runId,
    tenant,
    session,
    requester: journal.requester,
    contract: journal.contract,
    codeSha256: journal.codeSha256,
    inputSha256: journal.inputSha256,
    policyHash: journal.policyHash,
    dataClass: journal.dataClass,
    team: journal.team,
    ttlMs: journal.ttlMs,
    argsJson: shown,
    needsApproval,
  };
  const stopped = () => capabilityError("approval_required", `${name}: the run is paused for an approval (or over); it calls nothing more`);
  const first = await desk.callStep({ ...ask, phase: "replay" });
  if (first.step === "stopped") throw stopped();
  const seq = first.step === "run" ? first.seq : undefined;
  // the outcome goes into the record held for the call; a call that never left drops it (a retry runs it)
  const journaled = (what: JournalOutcome | null) =>
    seq === undefined
      ? Promise.resolve()
      : desk.journalCall({ runId, seq, outcome: what }).catch((error: unknown) => {
          logEvent("error", { event: "journal_failed", connector: connector.name, operation, error: String(error) });
        });
  const entry: JournaledCall = {
    approve: async () => {
      const step = await desk.callStep({ ...ask, phase: "approve" });
      if (step.step === "stopped") throw stopped();
      if (step.step === "pause") {
        outcome.approvalId = step.approvalId;
        throw capabilityError(
          "approval_required",
          `${name} needs a human approval of this exact call (approval ${step.approvalId}, arguments sha256 ${argsSha256}); the run is paused`,
        );
      }
      if (step.step === "rejected") {
        outcome.approvalId = step.approvalId;
        throw capabilityError("approval_rejected", `${name}: approval ${step.approvalId} of this call was rejected by ${step.decidedBy}: ${step.reason}`);
      }
      if (step.step === "run" && step.approvalId) outcome.approvalId = step.approvalId;
    },
    keep: async (result) => {
      const json = JSON.stringify(result ?? null);
      await journaled(
        json.length <= JOURNALED_ANSWER_MAX
          ? { ok: true, json }
          : { ok: false, message: `[upstream_failed] ${name} was done, but its answer was too large to keep for a replay; the call was not repeated` },
      );
    },
    settle: async (error) => {
      if (!outcome.sent) {
        // refused before it left: an approval it spent goes back, and nothing is kept to replay
        if (outcome.approvalId && codeOf(error) !== "approval_required" && codeOf(error) !== "approval_rejected") {
          await desk.restore(outcome.approvalId, runId).catch(() => {});
        }
        await journaled(null);
        return;
      }
      await journaled({ ok: false, message: error instanceof Error ? error.message : String(error) });
    },
  };
  if (first.step === "replay") entry.replayed = first.outcome;
  return entry;
}
