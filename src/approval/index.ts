// Approval: the human gate for contracts that need one, bound to the exact task.

// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only.
export type { ApprovalAsk, ApprovalCall, ApprovalDesk, ApprovalView, CallAsk, CallStep, GateAnswer, JournalOutcome, RunPause } from "./approval-desk.ts";
export { APPROVER_ROLE } from "./approval-desk.ts";
export { approvalRecord, approvalRefusal, gateTask, restoreApproval } from "./approval-gate.ts";
export { approvalKey, deskFor } from "./approval-key.ts";
