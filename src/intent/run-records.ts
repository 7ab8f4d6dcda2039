// The records a run leaves in its session ledger (start and finish) and the governance facts
// it leaves with its tenant's budget, built from what the run's steps found.
import type { GovernanceNote, Lane } from "../budget/index.ts";
import type { Contract } from "../contracts/index.ts";
import type { PlatformError } from "../errors/index.ts";
import {
  type ApprovalRecord,
  type BudgetRecord,
  type EvidenceEntry,
  type IntentSource,
  NO_POLICY_HASH,
  type RunStarted,
  type RuntimeRecord,
  sha256Hex,
  type TerminationReason,
} from "../evidence/index.ts";
import type { RunTrace, RuntimeProfile, SandboxOutcome } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import type { Decision } from "../policy/index.ts";
import type { CallDigests, Task } from "./task.ts";

/** Time beyond a contract's wall clock for booting the isolate and writing the records around it. */
export const DEADLINE_GRACE_MS = 2_000;

/**
 * When a run must have ended: the contract's wall-clock limit, plus a grace for booting
 * the isolate and writing the records around it. The local watchdog uses the same rule.
 */
export function deadlineOf(receivedAt: number, contract: Contract): number {
  return receivedAt + contract.limits.wallMs + DEADLINE_GRACE_MS;
}

/** What every record of the run is about. */
export type RunFacts = {
  runId: string;
  receivedAt: number;
  identity: Identity;
  intent: IntentSource;
  batch?: { id: string; index: number } | undefined;
  lane: Lane;
  /** The contract the run went under (after a downgrade, the cheaper one). */
  contract: Contract;
  policyHash: string;
  decision: Decision | null;
  task: Task | null;
  /** Digests of what arrived, whether or not it became a task. */
  digests: CallDigests;
};

function header({ runId, identity, contract, policyHash, decision }: Pick<RunFacts, "runId" | "identity" | "contract" | "policyHash" | "decision">) {
  return {
    runId,
    tenant: identity.tenant,
    actor: identity.actor,
    session: identity.session,
    contract: { id: contract.id, version: contract.version, class: contract.class },
    policyHash,
    decision,
  };
}

export function startRecord(
  facts: RunFacts & {
    issued: RunStarted["task"];
    approval: ApprovalRecord | undefined;
    budget: BudgetRecord | undefined;
    profile: RuntimeProfile;
    runtime: RuntimeRecord;
    trace: RunTrace;
  },
): RunStarted {
  const { identity, digests, task, budget, approval, profile } = facts;
  return {
    kind: "run.started",
    ...header(facts),
    roles: identity.roles,
    ...(identity.credential ? { credential: identity.credential } : {}),
    lane: facts.lane,
    ...(budget ? { budget } : {}),
    ...(facts.batch ? { batch: facts.batch } : {}),
    ...(approval ? { approval } : {}),
    codeSha256: digests.codeSha256,
    codeBytes: digests.codeBytes,
    inputSha256: digests.inputSha256,
    inputBytes: digests.inputBytes,
    intent: facts.intent,
    task: facts.issued,
    plan: task?.plan ? { destinations: task.plan.text, ...(task.plan.operations.length > 0 ? { operations: task.plan.operations } : {}) } : null,
    profile: { capabilities: profile.capabilities, egressRules: profile.rules.length },
    deadlineAt: deadlineOf(facts.receivedAt + (budget?.queuedMs ?? 0), facts.contract),
    runtime: facts.runtime,
    trace: facts.trace,
  };
}

export function finishRecord(
  facts: RunFacts & { startSeq: number; queuedMs: number; outcome: SandboxOutcome; error: { code: string; message: string } | undefined },
): EvidenceEntry {
  const { outcome } = facts;
  return {
    kind: "run.finished",
    ...header(facts),
    startSeq: facts.startSeq,
    termination: outcome.termination,
    ...(facts.error ? { error: facts.error } : {}),
    latencyMs: { queue: facts.queuedMs, ...outcome.latencyMs, total: Date.now() - facts.receivedAt },
    resultBytes: outcome.resultBytes,
    logs: { lines: outcome.logs.lines.length, bytes: outcome.logs.bytes, truncated: outcome.logs.truncated },
  };
}

/** The run's governance facts for the tenant's figures and rollout conditions (under the contract asked for). */
export function governanceNote(
  facts: RunFacts & {
    asked: Contract;
    termination: TerminationReason;
    drifted: boolean;
    approval: ApprovalRecord | undefined;
    rollout: GovernanceNote["rollout"];
  },
): GovernanceNote {
  const { decision, asked } = facts;
  return {
    sample: {
      at: Date.now(),
      runId: facts.runId,
      team: decision?.team ?? null,
      contract: asked.id,
      phase: asked.phase,
      decision: decision?.outcome ?? null,
      termination: facts.termination,
      planned: facts.task?.plan != null,
      drifted: facts.drifted,
      approval: facts.approval?.state ?? null,
    },
    ...(facts.rollout ? { rollout: facts.rollout } : {}),
  };
}

/** The records of a run that crashed: a start (written only if none was) and a finish with the failure. */
export async function crashRecords(
  facts: Pick<RunFacts, "runId" | "receivedAt" | "identity" | "intent" | "contract">,
  policyHash: string | undefined,
  failure: PlatformError,
): Promise<{ policyHash: string; started: RunStarted; finished: (startSeq: number) => EvidenceEntry }> {
  const empty = await sha256Hex("");
  const head = header({ ...facts, policyHash: policyHash ?? NO_POLICY_HASH, decision: null });
  return {
    policyHash: head.policyHash,
    started: {
      kind: "run.started",
      ...head,
      roles: facts.identity.roles,
      lane: "interactive",
      codeSha256: empty,
      codeBytes: 0,
      inputSha256: empty,
      inputBytes: 0,
      intent: facts.intent,
      task: null,
      plan: null,
      profile: { capabilities: [], egressRules: 0 },
      deadlineAt: facts.receivedAt,
    },
    finished: (startSeq) => ({
      kind: "run.finished",
      ...head,
      startSeq,
      termination: "failed",
      error: { code: failure.code, message: failure.message },
      latencyMs: { start: null, exec: null, total: Date.now() - facts.receivedAt },
      resultBytes: null,
      logs: { lines: 0, bytes: 0, truncated: false },
    }),
  };
}
