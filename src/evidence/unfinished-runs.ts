// Closing runs the runtime lost: a start record with no finish, because the runtime was
// restarted (the local watchdog stopped a runaway) or crashed. Each gets a finish record
// saying how it ended: timed_out if it was past its deadline, cancelled otherwise.
import type { RunFinished, RunStarted, TerminationReason } from "./evidence-record.ts";

export type LossCause = "watchdog" | "crash" | "out_of_memory";

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
  };
}
