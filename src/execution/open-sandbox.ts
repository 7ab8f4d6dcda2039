// The caller's side of a run: asks a sandbox host (sandbox-host.ts) to start the job and
// holds the run to the contract's wall clock from here, whatever the host does. A host
// that is blocked (locally a busy loop stalls its whole process: workerd enforces no CPU
// limit) or lost still ends the run, as timed_out or cut off, and the caller goes on.
import { PlatformError } from "../errors/index.ts";
import type { Sandbox, SandboxJob, SandboxJobWire } from "./run-in-sandbox.ts";
import {
  cutOff,
  failed,
  memoryExceeded,
  outcomeFromWire,
  outOfMemory,
  release,
  type SandboxOutcome,
  TIMED_OUT,
  timedOut,
  withDeadline,
} from "./sandbox-outcome.ts";

/** A started job as the caller holds it (an RPC stub of SandboxRun). */
export type SandboxRunStub = { booted(): Promise<void>; run(): Promise<unknown> };

/** Where runs are started: the SandboxHost entrypoint (ctx.exports), or locally a binding to the sandbox processes. */
export type SandboxService = { start(job: SandboxJobWire): SandboxRunStub };

/**
 * How long past the wall clock the caller waits for the host's own answer: the host's timer
 * ends a run that awaits too long and answers with its logs; this one ends a run whose host
 * cannot answer at all.
 */
export const HOST_ANSWER_MARGIN_MS = 250;

/**
 * The longest a sandbox may take to boot (a fresh isolate boots in milliseconds; locally a
 * job may wait for a sandbox process that answers). Within the grace a run's recorded
 * deadline allows beyond its wall clock, so a run still ends by that deadline; a boot that
 * takes longer ran nothing and is `sandbox_unavailable`.
 */
export const SANDBOX_BOOT_LIMIT_MS = 1_500;

type Boot = { ok: true } | { ok: false; outcome: SandboxOutcome };

export function openSandbox(service: SandboxService, job: SandboxJob): Sandbox {
  const { wallMs } = job.contract.limits;
  const limit = wallMs + HOST_ANSWER_MARGIN_MS;
  const { task, ...rest } = job;
  let stub: SandboxRunStub;
  try {
    stub = service.start({ ...rest, task: { code: task.code, input: task.input } });
  } catch (error) {
    const outcome = failed(unavailable(error), { start: null, exec: null });
    return { booted: Promise.resolve(), run: async () => outcome, discard: () => {} };
  }
  const boot: Promise<Boot> = withDeadline(stub.booted(), SANDBOX_BOOT_LIMIT_MS).then(
    (answer): Boot =>
      answer === TIMED_OUT
        ? {
            ok: false,
            outcome: failed(new PlatformError("sandbox_unavailable", `No sandbox booted the run within ${SANDBOX_BOOT_LIMIT_MS} ms; nothing of it ran.`), {
              start: null,
              exec: null,
            }),
          }
        : { ok: true },
    (error: unknown): Boot => ({ ok: false, outcome: failed(unavailable(error), { start: null, exec: null }) }),
  );

  const run = async (): Promise<SandboxOutcome> => {
    try {
      const booted = await boot;
      if (!booted.ok) return booted.outcome;
      const calledAt = Date.now();
      let answer: unknown;
      try {
        answer = await withDeadline(stub.run(), limit);
      } catch (error) {
        return lost(error, Date.now() - calledAt);
      }
      const elapsed = Date.now() - calledAt;
      if (answer === TIMED_OUT) return timedOut(wallMs, { start: null, exec: elapsed });
      const outcome = outcomeFromWire(answer);
      // A host that shares the caller's thread delays this timer too: what answers this late ran too long.
      return elapsed > limit && outcome.termination !== "timed_out" ? timedOut(wallMs, { start: outcome.latencyMs.start, exec: elapsed }) : outcome;
    } finally {
      release(stub);
    }
  };
  return { booted: boot.then(() => undefined), run, discard: () => release(stub) };
}

function unavailable(error: unknown): PlatformError {
  return new PlatformError("sandbox_unavailable", "The sandbox could not be started.", { cause: error });
}

/** The host went away while the code ran: out of memory, or cut off. */
function lost(error: unknown, execMs: number): SandboxOutcome {
  const latencyMs = { start: null, exec: execMs };
  if (outOfMemory(error)) return memoryExceeded(latencyMs, error);
  const text = error instanceof Error ? error.message : String(error);
  return cutOff("runtime_crashed", `The sandbox host was lost while the run was in it: ${text.slice(0, 200)}`, latencyMs, error);
}
