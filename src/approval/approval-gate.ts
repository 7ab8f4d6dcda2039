// The gate a run passes when its contract needs a human: it asks the tenant's desk about
// exactly this task (opening a request when there is none to use), and turns the answer into
// what evidence records and what the caller is told.
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { ApprovalRecord } from "../evidence/index.ts";
import type { Redactor } from "../redaction/index.ts";
import type { ApprovalDesk, GateAnswer } from "./approval-desk.ts";
import { approvalKey, deskFor } from "./approval-key.ts";

/** The task as the gate sees it: the hashes bind the approval, the code and input are shown redacted. */
export type GatedTask = {
  runId: string;
  tenant: string;
  requester: string;
  session: string;
  contract: Contract;
  codeSha256: string;
  inputSha256: string;
  code: string;
  input: unknown;
  plan: string[] | null;
  policyHash: string;
  dataClass: string;
  team: string | null;
};

export async function gateTask(approvals: DurableObjectNamespace<ApprovalDesk>, task: GatedTask, redact: Redactor): Promise<GateAnswer> {
  const contract = { id: task.contract.id, version: task.contract.version, class: task.contract.class };
  const binding = {
    tenant: task.tenant,
    requester: task.requester,
    contract: { id: contract.id, version: contract.version },
    codeSha256: task.codeSha256,
    inputSha256: task.inputSha256,
    policyHash: task.policyHash,
    dataClass: task.dataClass,
  };
  return await deskFor(approvals, task.tenant).gate({
    key: await approvalKey(binding),
    runId: task.runId,
    session: task.session,
    ...binding,
    contract,
    team: task.team,
    plan: task.plan,
    // the approver sees the task redacted; the hashes above bind the original
    code: redact.text(task.code).text,
    inputJson: JSON.stringify(redact.json(task.input ?? {}).value),
    ttlMs: task.contract.approval.ttlMinutes * 60_000,
  });
}

/** An approval the run will not spend (the budget or a rollback refused it) goes back to its task. */
export async function restoreApproval(approvals: DurableObjectNamespace<ApprovalDesk>, tenant: string, id: string, runId: string): Promise<void> {
  await deskFor(approvals, tenant).restore(id, runId);
}

/** The gate's answer as the run's evidence keeps it. */
export function approvalRecord(answer: GateAnswer): ApprovalRecord {
  if (answer.outcome === "approved") return { id: answer.id, state: "used", decidedBy: answer.decidedBy, reason: answer.reason.slice(0, 1_000) };
  if (answer.outcome === "rejected") return { id: answer.id, state: "rejected", decidedBy: answer.decidedBy, reason: answer.reason.slice(0, 1_000) };
  return { id: answer.id, state: answer.created ? "requested" : "pending" };
}

/** What the caller is told when the gate stops a run (undefined: it may run). */
export function approvalRefusal(answer: GateAnswer, contract: Contract, origin: string | undefined): PlatformError | undefined {
  if (answer.outcome === "approved") return undefined;
  const url = `${origin ?? ""}/approvals/${answer.id}`;
  if (answer.outcome === "rejected") {
    return new PlatformError(
      "approval_rejected",
      `Approval ${answer.id} for this exact task was rejected by ${answer.decidedBy}: ${answer.reason}. Nothing was run.`,
    );
  }
  return new PlatformError(
    "approval_required",
    `Contract ${contract.id} needs a human approval for this exact task; approval ${answer.id} is ${answer.created ? "requested" : "still pending"} (until ${new Date(answer.expiresAt).toISOString()}). Nothing was run.`,
    {
      hint: `Ask a person with the approver role in your tenant (not you) to approve it at ${url}, then call again with exactly the same code, input and data class; any change needs a new approval. Approval id: ${answer.id}.`,
    },
  );
}
