// Closing runs the runtime lost: a start record with no finish by the run's deadline plus
// its grace, because the runtime was restarted, crashed, or lost the run without anyone
// noticing (killed, evicted). The ledger's alarm finds it open and closes it, saying so.
import type { RunFinished, RunStarted, TerminationReason } from "./evidence-record.ts";

export type ClosedRun = {
  runId: string;
  contractId: string;
  termination: TerminationReason;
  error: { code: string; message: string };
  policyHash: string;
  decision: RunStarted["decision"];
};

export function closingRecord(started: RunStarted & { seq: number; at: string }, now: number): RunFinished {
  return {
    kind: "run.finished",
    runId: started.runId,
    tenant: started.tenant,
    actor: started.actor,
    session: started.session,
    contract: started.contract,
    policyHash: started.policyHash,
    decision: started.decision,
    startSeq: started.seq,
    termination: "cancelled",
    error: {
      code: "run_lost",
      message:
        "No completion was recorded by the run's deadline plus its grace: the runtime lost the run (killed, restarted or evicted), so the ledger closed it.",
    },
    latencyMs: { start: null, exec: null, total: Math.max(0, now - Date.parse(started.at)) },
    resultBytes: null,
    logs: { lines: 0, bytes: 0, truncated: false },
    reconciledBy: "ledger_alarm",
  };
}
