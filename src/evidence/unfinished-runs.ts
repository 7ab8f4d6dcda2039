// Closing runs the runtime lost: a start record with no finish, because the runtime was
// restarted (the local watchdog stopped a runaway), crashed, or lost the run without anyone
// noticing (killed, evicted) until the ledger's alarm found it open past its deadline.
// Each gets a finish record saying how it ended and who closed it.
import type { RunFinished, RunStarted, TerminationReason } from "./evidence-record.ts";

/** What the local supervisor saw (watchdog, crash, out_of_memory), or the ledger's alarm (deadline_passed). */
export type LossCause = "watchdog" | "crash" | "out_of_memory" | "deadline_passed";

export type ClosedRun = {
  runId: string;
  contractId: string;
  termination: TerminationReason;
  error: { code: string; message: string };
  policyHash: string;
  decision: RunStarted["decision"];
};

export function closingRecord(started: RunStarted & { seq: number; at: string }, cause: LossCause, now: number): RunFinished {
  const pastDeadline = now >= started.deadlineAt;
  const [termination, error]: [TerminationReason, { code: string; message: string }] =
    cause === "watchdog" && pastDeadline
      ? [
          "timed_out",
          { code: "timed_out", message: "The run overran its deadline and blocked the runtime; the local watchdog stopped it by restarting the runtime." },
        ]
      : cause === "watchdog"
        ? [
            "cancelled",
            { code: "runtime_restarted", message: "The runtime was restarted to stop another run that overran its deadline; this run was cut off." },
          ]
        : cause === "deadline_passed"
          ? [
              "cancelled",
              {
                code: "run_lost",
                message:
                  "No completion was recorded by the run's deadline plus its grace: the runtime lost the run (killed, restarted or evicted), so the ledger closed it.",
              },
            ]
          : [
              "cancelled",
              {
                code: "runtime_crashed",
                message:
                  cause === "out_of_memory"
                    ? "The runtime ran out of memory and restarted; every run in flight was cut off."
                    : "The runtime crashed and restarted; every run in flight was cut off.",
              },
            ];
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
    termination,
    error,
    latencyMs: { start: null, exec: null, total: Math.max(0, now - Date.parse(started.at)) },
    resultBytes: null,
    logs: { lines: 0, bytes: 0, truncated: false },
    reconciledBy: cause === "deadline_passed" ? "ledger_alarm" : "local_supervisor",
  };
}
