// One run, as named steps, each done by the layer that owns it: build the task (intent),
// decide (policy), gate approval (approval), lease a budget slot (budget) while the task is
// signed (policy) and admitted (execution), record the start (evidence), execute (execution),
// record the finish (evidence). The start is recorded before any task code runs; if it
// cannot be, nothing runs. The first refusal wins, in the order of `firstRefusal` below.
import { type ApprovalDesk, approvalRecord, approvalRefusal, type GateAnswer, gateTask, restoreApproval } from "../approval/index.ts";
import { budgetRecord, DEFAULT_BUDGET, endRun, type Lane, rolledBackRefusal, type SlotReserve, type SlotResult } from "../budget/index.ts";
import type { Connector, Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import {
  type ActivitySummary,
  type ApprovalRecord,
  type BudgetRecord,
  evidenceError,
  type IntentSource,
  type RunLedger,
  type RuntimeRecord,
  runLedger,
  type SessionLedger,
  type TaskId,
} from "../evidence/index.ts";
import {
  admitTask,
  notRun,
  openSandbox,
  type PolicyTaskClaims,
  PolicyTaskClaimsSchema,
  redactedOutcome,
  runTrace,
  runtimeProfile,
  type SandboxOutcome,
  type SandboxService,
  type TaskRejection,
  type TaskTrust,
  type VerifiedTask,
} from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { logEvent } from "../log/index.ts";
import { type Decision, decide, type HashedSnapshot, type PolicyInForce, refusalError, signTask, type TaskSigner } from "../policy/index.ts";
import { type Redactor, redactor } from "../redaction/index.ts";
import { buildTask } from "./build-task.ts";
import { callJournal, endJournaledRun, pausedOutcome } from "./call-journal.ts";
import { crashRecords, deadlineOf, finishRecord, governanceNote, startRecord } from "./run-records.ts";
import { newRunId, type Task } from "./task.ts";

export type SubmitDeps = {
  /** Where runs are started: the SandboxHost entrypoint (locally, the sandbox runtime processes). */
  sandboxes: SandboxService;
  ledgers: DurableObjectNamespace<SessionLedger>;
  policy: PolicyInForce;
  tasks: {
    /** Null when no signing key is configured: then nothing runs. */
    signer: TaskSigner | null;
    /** The keys the runtime accepts policy-signed tasks from. */
    trust: TaskTrust | null;
    clockToleranceS: number;
  };
  /** How long past its deadline a run left open waits before the ledger's alarm closes it as lost. */
  reconcileGraceMs: number;
  /** How runs lease and return budget slots: this isolate's reserve in front of the tenants' budgets. */
  leases: SlotReserve;
  /** Each tenant's approval desk (one object per tenant). */
  approvals: DurableObjectNamespace<ApprovalDesk>;
  /** Values of the platform's own secrets (injected egress credentials, keys), redacted wherever they appear. */
  secrets?: readonly string[];
  /** What runs the code (engine, the sandbox's compatibility date and flags, the platform's build), recorded in every start. */
  runtime: RuntimeRecord;
  /** The organisation's APIs contracts may grant operations of (connectors/). */
  connectors?: readonly Connector[];
};

/** One task to run: from an MCP call, or from a planner whose signed task was already checked. */
export type Submission = {
  contract: Contract;
  identity: Identity;
  arguments: unknown;
  intent: IntentSource;
  /** Ids to spend with the start record (a planner task's own id). */
  spend?: TaskId[];
  /** A refusal established before intake (a planner task that failed admission): nothing runs. */
  refusal?: PlatformError;
  /** Interactive (MCP, planner tasks) by default; batch work has its own budget and queue. */
  lane?: Lane;
  /** A batch task: which batch, and where in it. */
  batch?: { id: string; index: number };
  /** The run id to use (a batch claims its task under it before the run starts). */
  runId?: string;
  /** A slot already leased for this run (the batch consumer leases before it starts a run); released like any other. */
  slot?: SlotResult;
  /** The origin the caller reached, for the links it is given (an approval page). */
  origin?: string;
  /** The request's waitUntil: bookkeeping after the answer (governance figures) runs there, off the caller's path. */
  waitUntil?: (promise: Promise<unknown>) => void;
  /** The caller's W3C traceparent (MCP `_meta` or HTTP header); the run continues it, or starts a trace without one. */
  traceparent?: string | undefined;
};

export type RunReport = {
  runId: string;
  contract: Contract;
  policyHash: string;
  decision: Decision | null;
  outcome: SandboxOutcome;
  /** What the run did beyond its isolate, as the ledger recorded it (absent when it was never finished there). */
  activity?: ActivitySummary;
  /** What the budget did with the call (absent when it never asked: refused before, or crashed). */
  budget?: BudgetRecord | undefined;
  /** The approval gate, for a contract that needs one: the request, where it stood, its page, and the task it binds. */
  approval?: { id: string; state: ApprovalRecord["state"]; url: string; codeSha256: string; inputSha256: string } | undefined;
};

/** What a run holds as it goes, so that a crash at any step still ends in a recorded run and a returned slot. */
export type RunState = { runId: string; receivedAt: number; startSeq: number | null; slot: SlotResult | null; ledger: RunLedger };

/**
 * Runs the steps; an unexpected exception still ends in a recorded run (a start if none was
 * written, and a finish with `internal_error`) and a failed report, never in silence.
 */
export async function submitTask(deps: SubmitDeps, submission: Submission): Promise<RunReport> {
  const { tenant, session } = submission.identity;
  const run: RunState = {
    runId: submission.runId ?? newRunId(),
    receivedAt: Date.now(),
    startSeq: null,
    slot: submission.slot ?? null,
    ledger: runLedger(deps.ledgers, tenant, session),
  };
  try {
    return await runSteps(deps, submission, run);
  } catch (error) {
    return await recordCrash(deps, submission, run, error);
  }
}

async function runSteps(deps: SubmitDeps, submission: Submission, run: RunState): Promise<RunReport> {
  const { identity, contract: asked, origin, waitUntil } = submission;
  const { runId, receivedAt } = run;
  const lane = submission.lane ?? "interactive";

  // 1. Build the task from the caller's arguments.
  const built = await buildTask({ runId, receivedAt, identity, contract: asked }, submission.arguments);

  // 2. Decide, on the tenant's policy snapshot (archived before any record points at it).
  const policy = await archivedSnapshot(deps.policy, identity.tenant);
  const policyHash = policy.hashed.hash;
  const decision =
    built.ok && policy.ok && !submission.refusal
      ? decide(
          { tenant: identity.tenant, actor: identity.actor, roles: identity.roles, contractId: asked.id, dataClass: built.task.dataClass },
          policy.hashed.snapshot,
        )
      : null;

  // 3. Gate approval: a contract that needs a human runs only on an approval of exactly this task, used once.
  const approval = built.ok && decision && onlyNeedsApproval(decision) ? await gate(deps, built.task, decision, policyHash) : null;
  const allowed = built.ok && decision && (decision.outcome === "allow" || approval?.outcome === "approved") ? built.task : null;

  // 4 and 5. Lease a budget slot while the task is signed (policy) and admitted (execution).
  const budget = policy.hashed.snapshot.policy?.budget ?? DEFAULT_BUDGET;
  const [slot, admittedAsAsked] =
    allowed && decision
      ? await Promise.all([
          run.slot ?? deps.leases.acquire(identity.tenant, runId, asked, lane, budget, deadlineOf(0, asked)),
          signAndAdmit(deps, allowed, decision, policyHash),
        ])
      : [run.slot, null];
  run.slot = slot;
  // Downgraded by the budget: the call runs under the cheaper contract, signed for it.
  const placed =
    allowed && decision && slot?.ok && slot.slot.outcome === "downgraded"
      ? await downgrade(deps, submission, run, policy.hashed, decision)
      : { contract: asked, task: built.ok ? built.task : null, issued: admittedAsAsked };
  const { contract, task, issued } = placed;

  const refusal = firstRefusal([
    submission.refusal,
    built.ok ? undefined : built.error,
    policy.ok ? undefined : policy.error,
    approval ? approvalRefusal(approval, asked, origin) : undefined,
    decision && decision.outcome !== "allow" && approval?.outcome !== "approved" ? refusalError(decision, policyHash, asked.id) : undefined,
    slot && !slot.ok ? slot.error : undefined,
    rolledBackRefusal(slot, contract, identity.tenant),
    placed.refusal,
    issued?.error,
  ]);
  // An approval is spent only by a run that starts; refused after the gate, it goes back to its task.
  if (refusal && approval?.outcome === "approved") await restoreApproval(deps.approvals, identity.tenant, approval.id, runId);

  // 6. Record the start; an admitted task's isolate boots meanwhile (booting evaluates only the
  // harness: the task's code is imported by run(), after the record is durable).
  const admitted = refusal ? undefined : issued?.task;
  const trace = runTrace(submission.traceparent);
  // an approved task runs with the scope its grant gives (its decision's outcome stays needs_approval)
  const granted = runtimeProfile(contract, allowed && decision ? decision.scope : [], task?.plan?.destinations ?? null, trace, deps.connectors);
  // a run whose operations need approval keeps a journal of its calls, for its retry to replay
  const journal = admitted && task && decision ? await callJournal(granted, contract, task, decision, policyHash) : null;
  const profile = { ...granted, journal, operationPlan: task?.plan ? task.plan.operations : null };
  const sandbox = admitted
    ? openSandbox(deps.sandboxes, { runId, tenant: identity.tenant, session: identity.session, contract, profile, task: admitted })
    : undefined;
  const approved = approval ? approvalRecord(approval) : undefined;
  const budgetSeen = budgetRecord(slot, lane, asked, contract);
  const digests = task ?? (built.ok ? built.task : built.digests);
  const facts = { runId, receivedAt, identity, intent: submission.intent, batch: submission.batch, lane, contract, policyHash, decision, task, digests };
  const started = startRecord({ ...facts, issued: issued?.record ?? null, approval: approved, budget: budgetSeen, profile, runtime: deps.runtime, trace });
  const spend = [
    ...(submission.spend ?? []),
    ...(admitted && issued?.record ? [{ jti: `policy:${issued.record.jti}`, exp: issued.record.expiresAt, role: "task" as const }] : []),
  ];
  const [appended] = await Promise.all([run.ledger.start(started, spend, deps.reconcileGraceMs), sandbox?.booted]);
  if (!appended.ok) {
    sandbox?.discard();
    const outcome = notRun(
      new PlatformError("evidence_unavailable", "The run's evidence could not be recorded, so it did not run.", { cause: appended.detail }),
    );
    await endRun(deps.leases, slot, { tenant: identity.tenant, runId, receivedAt, termination: "failed", latencyMs: outcome.latencyMs });
    return { runId, contract, policyHash, decision, outcome };
  }
  run.startSeq = appended.seq;

  // 7. Execute what was admitted; a refusal is the run's outcome.
  const stopped = refusal ?? (appended.replayed ? taskRejected("task_replayed", "this task id was used before") : undefined);
  if (stopped) sandbox?.discard();
  const ran = sandbox && !stopped ? await sandbox.run() : notRun(stopped ?? new PlatformError("internal_error", "Nothing was admitted to run."));
  // a journaled run that paused on a call waits on its approval (or ended with its rejection), whatever the code did
  const paused = journal && sandbox && !stopped ? await endJournaledRun(deps.approvals, identity.tenant, journal, runId) : null;
  const pausedAt = paused ? `${origin ?? ""}/approvals/${paused.approvalId}` : "";
  const outcome = paused ? pausedOutcome(ran, paused, pausedAt) : ran;

  // 8. Record the finish. The ledger has the last word on termination (egress_denied, say) and on the run's activity.
  const redact = redactorFor(deps, contract);
  const recorded = await run.ledger.finish(
    finishRecord({
      ...facts,
      startSeq: appended.seq,
      queuedMs: budgetSeen?.queuedMs ?? 0,
      outcome,
      error: outcome.error && evidenceError(outcome.error, redact),
    }),
  );
  const termination = recorded?.termination ?? outcome.termination;
  const rollout = { config: policy.hashed.snapshot.policy?.rollout ?? {}, policyHash, tenant: identity.tenant };
  const note = governanceNote({
    ...facts,
    asked,
    termination,
    drifted: (recorded?.activity.egress.drift ?? 0) + (recorded?.activity.capabilities.drift ?? 0) > 0,
    approval: approved,
    rollout,
  });
  run.slot = null;
  await endRun(deps.leases, slot, {
    tenant: identity.tenant,
    runId,
    receivedAt,
    termination,
    latencyMs: outcome.latencyMs,
    note,
    ...(waitUntil ? { waitUntil } : {}),
  });

  const told = contract.redaction.result ? redactedOutcome(outcome, redact) : outcome;
  return {
    runId,
    contract,
    policyHash,
    decision,
    outcome: { ...told, termination },
    budget: budgetSeen,
    approval: paused
      ? {
          id: paused.approvalId,
          state: paused.state === "rejected" ? "rejected" : paused.created ? "requested" : "pending",
          url: pausedAt,
          codeSha256: digests.codeSha256,
          inputSha256: digests.inputSha256,
        }
      : approved && {
          id: approved.id,
          state: approved.state,
          url: `${origin ?? ""}/approvals/${approved.id}`,
          codeSha256: digests.codeSha256,
          inputSha256: digests.inputSha256,
        },
    ...(recorded ? { activity: recorded.activity } : {}),
  };
}

/** The first refusal of the list, in its order: intake, archive, approval, policy, budget, rollout, downgrade, signing. */
function firstRefusal(candidates: ReadonlyArray<PlatformError | undefined>): PlatformError | undefined {
  return candidates.find((refusal) => refusal !== undefined);
}

/** The decision needs nothing but a human's approval (any other reason is a plain refusal). */
function onlyNeedsApproval(decision: Decision): boolean {
  return decision.outcome === "needs_approval" && decision.reasons.every((reason) => reason === "approval_required");
}

async function gate(deps: SubmitDeps, task: Task, decision: Decision, policyHash: string): Promise<GateAnswer> {
  const { identity } = task;
  return await gateTask(
    deps.approvals,
    {
      runId: task.runId,
      tenant: identity.tenant,
      requester: identity.actor,
      session: identity.session,
      contract: task.contract,
      codeSha256: task.codeSha256,
      inputSha256: task.inputSha256,
      code: task.code,
      input: task.input,
      plan: task.plan?.text ?? null,
      policyHash,
      dataClass: decision.dataClass,
      team: decision.team,
    },
    redactorFor(deps, task.contract),
  );
}

/** What signing and admission produced: the record for evidence, and either the admitted task or why not. */
type Issued = {
  record: { jti: string; kid: string; expiresAt: number; verdict: string } | null;
  task?: VerifiedTask<PolicyTaskClaims>;
  error?: PlatformError;
};

/** Policy signs the allowed task; the runtime admits only what verifies against its trusted keys. */
async function signAndAdmit(deps: SubmitDeps, task: Task, decision: Decision, policyHash: string): Promise<Issued> {
  const { signer, trust, clockToleranceS } = deps.tasks;
  const signed = await signTask(signer, task, decision, policyHash);
  if (!signed.ok) return { record: null, error: signed.error };
  if (!trust)
    return {
      record: null,
      error: new PlatformError("misconfigured", "No keys to admit policy-signed tasks by are configured (TASK_SIGNING_KEY), so nothing can run."),
    };
  const { identity, contract } = task;
  const admission = await admitTask(
    signed.jws,
    { code: task.code, input: task.input },
    { tenant: identity.tenant, session: identity.session, contractId: contract.id, contractVersion: contract.version },
    trust,
    PolicyTaskClaimsSchema,
    { maxSeconds: contract.task.ttlSeconds, clockToleranceS },
  );
  const record = { jti: signed.claims.jti, kid: signed.kid, expiresAt: signed.claims.exp, verdict: admission.ok ? "accepted" : admission.reason };
  return admission.ok ? { record, task: admission.task } : { record, error: taskRejected(admission.reason, admission.detail) };
}

/** The cheaper contract the budget downgraded the call to (the catalog checked it is no more than the one asked for). */
async function downgrade(
  deps: SubmitDeps,
  submission: Submission,
  run: RunState,
  policy: HashedSnapshot,
  decision: Decision,
): Promise<{ contract: Contract; task: Task | null; issued: Issued | null; refusal?: PlatformError }> {
  const asked = submission.contract;
  const target = policy.snapshot.contracts.find((c) => c.id === asked.backpressure.downgradeTo);
  const rebuilt = target
    ? await buildTask({ runId: run.runId, receivedAt: run.receivedAt, identity: submission.identity, contract: target }, submission.arguments)
    : null;
  if (!target || !rebuilt) {
    const refusal = new PlatformError(
      "misconfigured",
      `Contract ${asked.id} downgrades to ${asked.backpressure.downgradeTo}, which the policy snapshot lacks.`,
    );
    return { contract: asked, task: null, issued: null, refusal };
  }
  if (!rebuilt.ok) {
    const refusal = new PlatformError(
      rebuilt.error.code,
      `The budget is full and this call does not fit ${target.id}, the contract it would be downgraded to: ${rebuilt.error.message}`,
    );
    return { contract: asked, task: null, issued: null, refusal };
  }
  return { contract: target, task: rebuilt.task, issued: await signAndAdmit(deps, rebuilt.task, decision, policy.hash) };
}

/** The last line of defence: records an unexpected failure as a run that did not (or no longer) run, and returns its slot. */
async function recordCrash(deps: SubmitDeps, submission: Submission, run: RunState, error: unknown): Promise<RunReport> {
  const { contract, identity } = submission;
  logEvent("error", { event: "pipeline_crashed", runId: run.runId, error: String(error), stack: error instanceof Error ? error.stack : undefined });
  const failure = new PlatformError("internal_error", "The run failed unexpectedly; nothing ran after the failure.", { cause: error });
  const policyHash = await deps.policy
    .computeSnapshot(identity.tenant)
    .then((hashed) => hashed.hash)
    .catch(() => undefined);
  const records = await crashRecords({ ...run, identity, intent: submission.intent, contract }, policyHash, failure);
  if (run.startSeq === null) {
    const started = await run.ledger.start(records.started, [], deps.reconcileGraceMs);
    run.startSeq = started.ok ? started.seq : null;
  }
  const outcome: SandboxOutcome = notRun(failure);
  await endRun(deps.leases, run.slot, {
    tenant: identity.tenant,
    runId: run.runId,
    receivedAt: run.receivedAt,
    termination: "failed",
    latencyMs: outcome.latencyMs,
  });
  if (run.startSeq !== null) await run.ledger.finish(records.finished(run.startSeq));
  return { runId: run.runId, contract, policyHash: records.policyHash, decision: null, outcome };
}

const redactors = new WeakMap<SubmitDeps, WeakMap<Contract, Redactor>>();

/** The built-in detectors, the platform's secrets and the contract's own rules. */
function redactorFor(deps: SubmitDeps, contract: Contract): Redactor {
  let byContract = redactors.get(deps);
  if (!byContract) {
    byContract = new WeakMap();
    redactors.set(deps, byContract);
  }
  let found = byContract.get(contract);
  if (!found) {
    found = redactor({ secrets: deps.secrets ?? [], rules: contract.redaction.rules });
    byContract.set(contract, found);
  }
  return found;
}

export function taskRejected(reason: TaskRejection, detail: string): PlatformError {
  return new PlatformError("task_rejected", `The signed task was refused (${reason}): ${detail}. Nothing was run.`);
}

/** An MCP tool call: the task comes straight from the agent's arguments. */
export function submitToolCall(
  deps: SubmitDeps,
  contract: Contract,
  identity: Identity,
  rawArguments: unknown,
  request: Pick<Submission, "origin" | "waitUntil" | "traceparent"> = {},
): Promise<RunReport> {
  return submitTask(deps, { contract, identity, arguments: rawArguments, intent: { source: "mcp" }, ...request });
}

/** The tenant's snapshot, archived before any record points at it. The hash is known even when archiving fails. */
async function archivedSnapshot(
  policy: PolicyInForce,
  tenant: string,
): Promise<{ ok: true; hashed: HashedSnapshot } | { ok: false; hashed: HashedSnapshot; error: PlatformError }> {
  try {
    return { ok: true, hashed: await policy.snapshotFor(tenant) };
  } catch (error) {
    logEvent("error", { event: "policy_archive_failed", tenant, error: String(error) });
    return {
      ok: false,
      hashed: await policy.computeSnapshot(tenant),
      error: new PlatformError("policy_unavailable", "The policy snapshot could not be archived, so nothing ran.", { cause: error }),
    };
  }
}
