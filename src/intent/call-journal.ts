// Approval of a single connector call, mid-run. A run whose connectors have operations that
// need approval (privileged, or marked by the grant) keeps a journal of its operation calls
// at the tenant's approval desk, under its task's key. When such a call has no approval yet,
// the binding pauses the run there; this step turns the pause into what the caller is told
// (approval_required naming the operation and argument digest, with the approval page, as a
// run approval is told), whatever the code did with the error it got. The caller's retry of
// the same task replays the calls made before the pause from the journal and runs the
// approved call once; a rejection ends the run with its reason.
import { type ApprovalDesk, approvalKey, deskFor, type RunPause } from "../approval/index.ts";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { CallJournal, RuntimeProfile, SandboxOutcome } from "../execution/index.ts";
import type { Decision } from "../policy/index.ts";
import type { Task } from "./task.ts";

/** The journal a run keeps, when one of its granted operations needs approval; null otherwise. */
export async function callJournal(
  profile: RuntimeProfile,
  contract: Contract,
  task: Task,
  decision: Decision,
  policyHash: string,
): Promise<CallJournal | null> {
  if (!profile.connectors.some((connector) => connector.approve.length > 0)) return null;
  const binding = {
    tenant: task.identity.tenant,
    requester: task.identity.actor,
    contract: { id: contract.id, version: contract.version },
    codeSha256: task.codeSha256,
    inputSha256: task.inputSha256,
    policyHash,
    dataClass: decision.dataClass,
  };
  return {
    taskKey: await approvalKey(binding),
    requester: binding.requester,
    contract: { id: contract.id, version: contract.version, class: contract.class },
    codeSha256: task.codeSha256,
    inputSha256: task.inputSha256,
    policyHash,
    dataClass: decision.dataClass,
    team: decision.team,
    ttlMs: contract.approval.ttlMinutes * 60_000,
  };
}

/** The run has ended: whether it paused on a call (or was stopped by a call's rejection); closes the journal if not. */
export async function endJournaledRun(
  approvals: DurableObjectNamespace<ApprovalDesk>,
  tenant: string,
  journal: CallJournal,
  runId: string,
): Promise<RunPause | null> {
  return await deskFor(approvals, tenant).endJournaledRun(journal.taskKey, runId);
}

/** A paused run's outcome: whatever the code returned or threw, the run waits on the call's approval or ends with its rejection. */
export function pausedOutcome(ran: SandboxOutcome, pause: RunPause, url: string): SandboxOutcome {
  const { connector, operation, argsSha256 } = pause.call;
  const call = `${connector}.${operation}`;
  const error =
    pause.state === "rejected"
      ? new PlatformError(
          "approval_rejected",
          `Approval ${pause.approvalId} of the call ${call} (arguments sha256 ${argsSha256}) was rejected by ${pause.decidedBy ?? "?"}: ${pause.reason ?? ""}. The run ended at that call.`,
        )
      : new PlatformError(
          "approval_required",
          `The call ${call} with arguments sha256 ${argsSha256} needs a human approval (approval ${pause.approvalId}, ${pause.created ? "requested" : "still pending"} until ${new Date(pause.expiresAt).toISOString()}); the run paused there, after the calls before it.`,
          {
            hint: `Ask a person with the approver role in your tenant (not you) to approve it at ${url}, then call again with exactly the same code and input: the connector calls before the pause return what they returned (none is made twice; the code's own fetch() and other capabilities do run again) and the approved call runs once. Other arguments need another approval.`,
          },
        );
  const { result: _result, resultBytes: _bytes, ...rest } = ran;
  return { ...rest, termination: "denied", resultBytes: null, error };
}
