// Where a tenant's approvals live, and what an approval is bound to.
import { canonicalJson, sha256Hex } from "../evidence/index.ts";
import type { ApprovalDesk } from "./approval-desk.ts";

export function deskFor(namespace: DurableObjectNamespace<ApprovalDesk>, tenant: string): DurableObjectStub<ApprovalDesk> {
  return namespace.getByName(`tenant:${tenant}`);
}

/** What an approval is bound to: one byte of code, another input, another contract version or policy snapshot is another task. */
export async function approvalKey(binding: {
  tenant: string;
  requester: string;
  contract: { id: string; version: string };
  codeSha256: string;
  inputSha256: string;
  policyHash: string;
  dataClass: string;
}): Promise<string> {
  return await sha256Hex(canonicalJson({ format: "agent-exec/approval@1", ...binding }));
}
