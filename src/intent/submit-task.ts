// The path every task takes once its caller is known: intake -> policy (decide on the
// tenant's snapshot, sign what it allows) -> execution (admit the signed task) ->
// evidence (start, spending the task ids) -> execution (run) -> evidence (finish).
// The start is recorded before any task code runs; if it cannot be, nothing runs.
import { type ApprovalDesk, approvalKey, deskFor, type GateAnswer } from "../approval/index.ts";
import {
  acquireSlot,
  budgetFor,
  type GovernanceNote,
  type Lane,
  releaseSlot,
  type SlotReserve,
  type SlotResult,
  type SlotSample,
  type TenantBudget,
} from "../budget/index.ts";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import {
  type ActivitySummary,
  type ApprovalRecord,
  type BudgetRecord,
  type EvidenceEntry,
  type IntentSource,
  ledgerFor,
  NO_POLICY_HASH,
  type RunStarted,
  type SessionLedger,
  sha256Hex,
  type TaskId,
  type TerminationReason,
} from "../evidence/index.ts";
import {
  admitTask,
  openSandbox,
  POLICY_ISSUER,
  type PolicyTaskClaims,
  PolicyTaskClaimsSchema,
  type RuntimeProfile,
  runtimeProfile,
  type SandboxOutcome,
  type SandboxService,
  TASK_AUDIENCE,
  type TaskRejection,
  type TaskTrust,
  type VerifiedTask,
} from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { DEFAULT_BUDGET, type Decision, decide, type HashedSnapshot, type PolicyInForce, refusalError, type TaskSigner } from "../policy/index.ts";
import { logEvent, type Redactor, redactedField, redactor } from "../redaction/index.ts";
import { buildTask } from "./build-task.ts";
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
  /** Each tenant's concurrency budget (one object per tenant). */
  budgets: DurableObjectNamespace<TenantBudget>;
  /** This isolate's reserve of budget slots (absent: every run asks the budget and gives its slot back there). */
  reserve?: SlotReserve;
  /** Each tenant's approval desk (one object per tenant). */
  approvals: DurableObjectNamespace<ApprovalDesk>;
  /** Values of the platform's own secrets (injected egress credentials, keys), redacted wherever they appear. */
  secrets?: readonly string[];
};

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

/** What the caller gets back, redacted when the contract says so (evidence and logs always are). */
function forCaller(outcome: SandboxOutcome, redact: Redactor, contract: Contract): SandboxOutcome {
  if (!contract.redaction.result) return outcome;
  return {
    ...outcome,
    ...(outcome.result !== undefined ? { result: redact.json(outcome.result).value } : {}),
    logs: { ...outcome.logs, lines: outcome.logs.lines.map((line) => ({ ...line, message: redact.text(line.message).text })) },
    ...(outcome.error
      ? {
          error: new PlatformError(outcome.error.code, redact.text(outcome.error.message).text, {
            hint: outcome.error.hint,
            ...(outcome.error.retryAfterMs === undefined ? {} : { retryAfterMs: outcome.error.retryAfterMs }),
          }),
        }
      : {}),
    ...(outcome.stack ? { stack: redact.text(outcome.stack).text } : {}),
  };
}

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
  /** The approval gate, for a contract that needs one: the request, where it stood, and its page. */
  approval?: { id: string; state: ApprovalRecord["state"]; url: string } | undefined;
};

const NOT_RUN = { resultBytes: null, logs: { lines: [], bytes: 0, truncated: false }, latencyMs: { start: null, exec: null } };

export function taskRejected(reason: TaskRejection, detail: string): PlatformError {
  return new PlatformError("task_rejected", `The signed task was refused (${reason}): ${detail}. Nothing was run.`);
}

/**
 * Runs the pipeline; an unexpected exception still ends in a recorded run (a start if none
 * was written, and a finish with `internal_error`) and a failed report, never in silence.
 */
export async function submitTask(deps: SubmitDeps, submission: Submission): Promise<RunReport> {
  const progress: Progress = {
    runId: submission.runId ?? newRunId(),
    receivedAt: Date.now(),
    startSeq: null,
    leased: submission.slot?.ok === true,
  };
  try {
    return await runPipeline(deps, submission, progress);
  } catch (error) {
    return await recordCrash(deps, submission, progress, error);
  }
}

type Progress = { runId: string; receivedAt: number; startSeq: number | null; leased?: boolean };

async function runPipeline(deps: SubmitDeps, submission: Submission, progress: Progress): Promise<RunReport> {
  const { identity } = submission;
  const asked = submission.contract;
  const lane = submission.lane ?? "interactive";
  const { runId, receivedAt } = progress;
  const built = await buildTask({ runId, receivedAt, identity, contract: asked }, submission.arguments);

  const policy = await archivedSnapshot(deps.policy, identity.tenant);
  const decision: Decision | null =
    built.ok && policy.ok && !submission.refusal
      ? decide(
          { tenant: identity.tenant, actor: identity.actor, roles: identity.roles, contractId: asked.id, dataClass: built.task.dataClass },
          policy.hashed.snapshot,
        )
      : null;
  const policyHash = policy.hashed.hash;

  // A contract that needs a human runs only on an approval of exactly this task, used once.
  const approval =
    built.ok && policy.ok && decision?.outcome === "needs_approval" && decision.reasons.every((r) => r === "approval_required")
      ? await gateApproval(deps, built.task, decision, policyHash, runId)
      : null;
  const approvalRecord: ApprovalRecord | undefined = approval
    ? approval.outcome === "approved"
      ? { id: approval.id, state: "used", decidedBy: approval.decidedBy, reason: approval.reason.slice(0, 1_000) }
      : approval.outcome === "rejected"
        ? { id: approval.id, state: "rejected", decidedBy: approval.decidedBy, reason: approval.reason.slice(0, 1_000) }
        : { id: approval.id, state: approval.created ? "requested" : "pending" }
    : undefined;

  // What policy allowed waits for a budget slot (the contract's backpressure mode decides how);
  // meanwhile it is signed, and the runtime admits only what verifies.
  const allowed = built.ok && decision && (decision.outcome === "allow" || approval?.outcome === "approved") ? { task: built.task, decision } : null;
  const budget = policy.hashed.snapshot.policy?.budget ?? DEFAULT_BUDGET;
  const preLeased = submission.slot ?? null;
  const [slot, firstIssue] = allowed
    ? await Promise.all([
        preLeased ??
          (deps.reserve
            ? deps.reserve.acquire(identity.tenant, runId, asked, lane, budget, deadlineOf(0, asked))
            : acquireSlot(deps.budgets, identity.tenant, runId, asked, lane, budget, deadlineOf(0, asked))),
        issueAndAdmit(deps, allowed.task, allowed.decision, policyHash),
      ])
    : [preLeased, null];
  progress.leased = slot?.ok === true;
  // An approval is spent by a run that starts; refused by the budget, it goes back to its task.
  if (approval?.outcome === "approved" && slot && !slot.ok) await deskFor(deps.approvals, identity.tenant).restore(approval.id, runId);

  // Downgraded: the call runs under the cheaper contract, signed for it. The catalog checked that it
  // is no more than the one asked for, so the decision for that one covers it.
  let contract = asked;
  let task = built.ok ? built.task : null;
  let issued = firstIssue;
  let downgradeRefusal: PlatformError | undefined;
  if (allowed && slot?.ok && slot.slot.outcome === "downgraded") {
    const target = policy.hashed.snapshot.contracts.find((c) => c.id === asked.backpressure.downgradeTo);
    const rebuilt = target ? await buildTask({ runId, receivedAt, identity, contract: target }, submission.arguments) : null;
    if (!target || !rebuilt) {
      downgradeRefusal = new PlatformError(
        "misconfigured",
        `Contract ${asked.id} downgrades to ${asked.backpressure.downgradeTo}, which the policy snapshot lacks.`,
      );
    } else if (!rebuilt.ok) {
      downgradeRefusal = new PlatformError(
        rebuilt.error.code,
        `The budget is full and this call does not fit ${target.id}, the contract it would be downgraded to: ${rebuilt.error.message}`,
      );
    } else {
      contract = target;
      task = rebuilt.task;
      issued = await issueAndAdmit(deps, rebuilt.task, allowed.decision, policyHash);
    }
  }
  // A rollout phase its rollback conditions switched off for this tenant runs nothing (the budget says which).
  const rolledBack = slot?.slot?.rolledBack ?? [];
  const phaseRefusal = rolledBack.includes(contract.phase)
    ? new PlatformError(
        "phase_rolled_back",
        `Rollout phase ${contract.phase} (contract ${contract.id}) is rolled back for tenant ${identity.tenant}; nothing was run.`,
      )
    : undefined;
  if (phaseRefusal && approval?.outcome === "approved") await deskFor(deps.approvals, identity.tenant).restore(approval.id, runId);
  const digests = task ?? (built.ok ? built.task : built.digests);
  // Queue wait: for a budget slot.
  const queuedMs = slot?.slot?.queuedMs ?? 0;
  const budgetRecord: BudgetRecord | undefined = slot?.slot
    ? {
        lane,
        // batch work waits in the queue, whatever the contract's interactive mode
        mode: lane === "batch" ? "delay" : asked.backpressure.mode,
        outcome: slot.slot.outcome,
        queuedMs,
        inFlight: slot.slot.inFlight,
        ...(slot.slot.reserved ? { reserved: true as const } : {}),
        ...(slot.slot.outcome === "rejected" ? { reason: slot.slot.reason, retryAfterMs: slot.slot.retryAfterMs } : {}),
        ...(contract !== asked ? { downgradedFrom: { id: asked.id, version: asked.version } } : {}),
      }
    : undefined;

  const profile: RuntimeProfile = runtimeProfile(
    contract,
    decision?.outcome === "allow" ? decision.scope : [],
    task ? (task.plan?.destinations ?? null) : null,
  );

  const header = {
    runId,
    tenant: identity.tenant,
    actor: identity.actor,
    session: identity.session,
    contract: { id: contract.id, version: contract.version, class: contract.class },
    policyHash,
    decision,
  };
  const started: RunStarted = {
    kind: "run.started",
    ...header,
    roles: identity.roles,
    lane,
    ...(budgetRecord ? { budget: budgetRecord } : {}),
    ...(submission.batch ? { batch: submission.batch } : {}),
    ...(approvalRecord ? { approval: approvalRecord } : {}),
    codeSha256: digests.codeSha256,
    codeBytes: digests.codeBytes,
    inputSha256: digests.inputSha256,
    inputBytes: digests.inputBytes,
    intent: submission.intent,
    task: issued?.record ?? null,
    plan: task?.plan ? { destinations: task.plan.text } : null,
    profile: { capabilities: profile.capabilities, egressRules: profile.rules.length },
    deadlineAt: deadlineOf(receivedAt + queuedMs, contract),
  };

  const ledger = ledgerFor(deps.ledgers, identity.tenant, identity.session);
  const admitted = slot?.ok && !downgradeRefusal && !phaseRefusal ? issued?.task : undefined;
  // A boot is the longest stage that cannot be interrupted: a backlogged tenant's call stands aside here too.
  // An admitted task's isolate boots while its start is recorded. Booting evaluates only
  // the harness; the task's code is imported by run(), after the record is durable.
  const sandbox = admitted
    ? openSandbox(deps.sandboxes, { runId, tenant: identity.tenant, session: identity.session, contract, profile, task: admitted })
    : undefined;
  const spend = [
    ...(submission.spend ?? []),
    ...(admitted && issued?.record ? [{ jti: `policy:${issued.record.jti}`, exp: issued.record.expiresAt, role: "task" as const }] : []),
  ];
  const [appended] = await Promise.all([appendEntry(ledger, started, spend, deps.reconcileGraceMs), sandbox?.booted]);
  if (!appended.ok) {
    sandbox?.discard();
    const outcome: SandboxOutcome = {
      termination: "failed",
      ...NOT_RUN,
      error: new PlatformError("evidence_unavailable", "The run's evidence could not be recorded, so it did not run.", { cause: appended.detail }),
    };
    await giveBack(deps, submission, progress, "failed", outcome, queuedMs, slot);
    return { runId, contract, policyHash, decision, outcome };
  }

  progress.startSeq = appended.seq;
  const refusal =
    submission.refusal ??
    (!built.ok
      ? built.error
      : !policy.ok
        ? policy.error
        : approval && approval.outcome !== "approved"
          ? approvalError(approval, asked, submission.origin)
          : decision && decision.outcome !== "allow" && approval?.outcome !== "approved"
            ? refusalError(decision, policyHash, asked.id)
            : slot && !slot.ok
              ? slot.error
              : phaseRefusal
                ? phaseRefusal
                : downgradeRefusal
                  ? downgradeRefusal
                  : issued?.error
                    ? issued.error
                    : appended.replayed
                      ? taskRejected("task_replayed", "this task id was used before")
                      : undefined);
  if (refusal) sandbox?.discard();
  const outcome: SandboxOutcome =
    sandbox && !refusal ? await sandbox.run() : { termination: refusal && refusal.status >= 500 ? "failed" : "denied", ...NOT_RUN, error: refusal };
  const totalMs = Date.now() - receivedAt;

  const finished: EvidenceEntry = {
    kind: "run.finished",
    ...header,
    startSeq: appended.seq,
    termination: outcome.termination,
    ...(outcome.error ? { error: evidenceError(outcome.error, redactorFor(deps, contract)) } : {}),
    latencyMs: { queue: queuedMs, ...outcome.latencyMs, total: totalMs },
    resultBytes: outcome.resultBytes,
    logs: { lines: outcome.logs.lines.length, bytes: outcome.logs.bytes, truncated: outcome.logs.truncated },
  };
  const recorded = await appendWithRetry(ledger, finished);
  // The run's governance facts (the ledger has the last word on termination and drift) go to the
  // tenant's budget object with its slot, in one round trip; a run without a slot sends them alone,
  // after the answer.
  const note = {
    sample: {
      at: Date.now(),
      runId,
      team: decision?.team ?? null,
      contract: asked.id,
      phase: asked.phase,
      decision: decision?.outcome ?? null,
      termination: recorded?.termination ?? outcome.termination,
      planned: task?.plan != null,
      drifted: (recorded?.activity.egress.drift ?? 0) > 0,
      approval: approvalRecord?.state ?? null,
    },
    rollout: { config: policy.hashed.snapshot.policy?.rollout ?? {}, policyHash, tenant: identity.tenant },
  };
  if (progress.leased) await giveBack(deps, submission, progress, recorded?.termination ?? outcome.termination, outcome, queuedMs, slot, note);
  else {
    const noted = noteGovernance(deps, note);
    if (submission.waitUntil) submission.waitUntil(noted);
    else await noted;
  }
  // The ledger has the last word on termination (e.g. egress_denied) and on the run's activity.
  const told = forCaller(outcome, redactorFor(deps, contract), contract);
  const final: SandboxOutcome = recorded ? { ...told, termination: recorded.termination } : told;
  return {
    runId,
    contract,
    policyHash,
    decision,
    outcome: final,
    budget: budgetRecord,
    approval: approvalRecord
      ? { id: approvalRecord.id, state: approvalRecord.state, url: `${submission.origin ?? ""}/approvals/${approvalRecord.id}` }
      : undefined,
    ...(recorded ? { activity: recorded.activity } : {}),
  };
}

/** Asks the tenant's approval desk about exactly this task (and opens a request when there is none to use). */
async function gateApproval(deps: SubmitDeps, task: Task, decision: Decision, policyHash: string, runId: string): Promise<GateAnswer> {
  const redact = redactorFor(deps, task.contract);
  const contract = { id: task.contract.id, version: task.contract.version, class: task.contract.class };
  const binding = {
    tenant: task.identity.tenant,
    requester: task.identity.actor,
    contract: { id: contract.id, version: contract.version },
    codeSha256: task.codeSha256,
    inputSha256: task.inputSha256,
    policyHash,
    dataClass: decision.dataClass,
  };
  return await deskFor(deps.approvals, task.identity.tenant).gate({
    key: await approvalKey(binding),
    runId,
    tenant: task.identity.tenant,
    requester: task.identity.actor,
    session: task.identity.session,
    contract,
    codeSha256: task.codeSha256,
    inputSha256: task.inputSha256,
    policyHash,
    dataClass: decision.dataClass,
    team: decision.team,
    plan: task.plan?.text ?? null,
    // the approver sees the task redacted; the hashes above bind the original
    code: redact.text(task.code).text,
    inputJson: JSON.stringify(redact.json(task.input ?? {}).value),
    ttlMs: task.contract.approval.ttlMinutes * 60_000,
  });
}

/** What the caller is told when the approval gate stops a run. */
function approvalError(answer: Exclude<GateAnswer, { outcome: "approved" }>, contract: Contract, origin: string | undefined): PlatformError {
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

/** A run's error as evidence keeps it: the message redacted, with the original's SHA-256 when anything was. */
function evidenceError(error: PlatformError, redact: Redactor): { code: string; message: string; messageSha256?: string; redacted?: string[] } {
  const field = redactedField(redact, error.message);
  return {
    code: error.code,
    message: field.text.slice(0, 1_000),
    ...(field.sha256 ? { messageSha256: field.sha256, redacted: field.redacted } : {}),
  };
}

/** The run's governance facts for the tenant's metrics; a failure is logged, never the caller's problem. */
async function noteGovernance(deps: SubmitDeps, { sample, rollout }: GovernanceNote & { rollout: object }): Promise<void> {
  const { tenant } = rollout;
  try {
    await budgetFor(deps.budgets, tenant).noteRun(sample, rollout);
  } catch (error) {
    logEvent("error", { event: "governance_note_failed", tenant, runId: sample.runId, error: String(error) });
  }
}

/** Returns the run's budget slot, if it holds one, with its figures for the metrics. */
async function giveBack(
  deps: SubmitDeps,
  submission: Submission,
  progress: Progress,
  termination: TerminationReason,
  outcome: Pick<SandboxOutcome, "latencyMs">,
  queuedMs: number,
  slot: SlotResult | null,
  note?: GovernanceNote,
): Promise<void> {
  if (!progress.leased || !slot?.ok) return;
  progress.leased = false;
  const sample = {
    at: Date.now(),
    outcome: slot.slot.outcome,
    termination,
    queueMs: queuedMs,
    startMs: outcome.latencyMs.start,
    execMs: outcome.latencyMs.exec,
    totalMs: Date.now() - progress.receivedAt,
  };
  await returnSlot(deps, submission, progress.runId, sample, note);
}

/** Gives a slot back where it came from: this isolate's reserve (which knows its own), or the budget. */
async function returnSlot(deps: SubmitDeps, submission: Submission, runId: string, sample: SlotSample, note?: GovernanceNote): Promise<void> {
  const { tenant } = submission.identity;
  if (deps.reserve) await deps.reserve.release(tenant, runId, sample, note, submission.waitUntil);
  else await releaseSlot(deps.budgets, tenant, runId, sample, note);
}

/**
 * When a run must have ended: the contract's wall-clock limit, plus a grace for booting
 * the isolate and writing the records around it. The local watchdog uses the same rule.
 */
export function deadlineOf(receivedAt: number, contract: Contract): number {
  return receivedAt + contract.limits.wallMs + DEADLINE_GRACE_MS;
}

/** Time beyond a contract's wall clock for booting the isolate and writing the records around it. */
export const DEADLINE_GRACE_MS = 2_000;

/** An MCP tool call: the task comes straight from the agent's arguments. */
export function submitToolCall(
  deps: SubmitDeps,
  contract: Contract,
  identity: Identity,
  rawArguments: unknown,
  request: Pick<Submission, "origin" | "waitUntil"> = {},
): Promise<RunReport> {
  return submitTask(deps, { contract, identity, arguments: rawArguments, intent: { source: "mcp" }, ...request });
}

/** What signing and admission produced: the record for evidence, and either the admitted task or why not. */
type Issued = {
  record: { jti: string; kid: string; expiresAt: number; verdict: string } | null;
  task?: VerifiedTask<PolicyTaskClaims>;
  error?: PlatformError;
};

/** Signs the allowed task (policy layer) and has the runtime admit it (execution layer). */
async function issueAndAdmit(deps: SubmitDeps, task: Task, decision: Decision, policyHash: string): Promise<Issued> {
  const { signer, trust, clockToleranceS } = deps.tasks;
  const now = Math.floor(task.receivedAt / 1000);
  const claims: PolicyTaskClaims = {
    iss: POLICY_ISSUER,
    aud: TASK_AUDIENCE,
    sub: task.identity.actor,
    tenant: task.identity.tenant,
    sid: task.identity.session,
    run: task.runId,
    contract: { id: task.contract.id, version: task.contract.version },
    code: task.codeSha256,
    input: task.inputSha256,
    policy: policyHash,
    dataClass: decision.dataClass,
    scope: decision.scope,
    iat: now,
    nbf: now,
    exp: now + task.contract.task.ttlSeconds,
    jti: crypto.randomUUID(),
  };
  if (!signer || !trust) {
    return { record: null, error: new PlatformError("misconfigured", "No task-signing key is configured (TASK_SIGNING_KEY), so nothing can run.") };
  }
  let jws: string;
  try {
    jws = await signer.sign(claims);
  } catch (error) {
    return {
      record: null,
      error: new PlatformError("misconfigured", "The task-signing key (TASK_SIGNING_KEY) could not be used, so nothing can run.", { cause: error }),
    };
  }
  const admission = await admitTask(
    jws,
    { code: task.code, input: task.input },
    { tenant: task.identity.tenant, session: task.identity.session, contractId: task.contract.id, contractVersion: task.contract.version },
    trust,
    PolicyTaskClaimsSchema,
    { maxSeconds: task.contract.task.ttlSeconds, clockToleranceS },
  );
  const record = { jti: claims.jti, kid: signer.kid, expiresAt: claims.exp, verdict: admission.ok ? "accepted" : admission.reason };
  return admission.ok ? { record, task: admission.task } : { record, error: taskRejected(admission.reason, admission.detail) };
}

/** The last line of defence: records an unexpected failure as a run that did not (or no longer) run. */
async function recordCrash(deps: SubmitDeps, submission: Submission, progress: Progress, error: unknown): Promise<RunReport> {
  const { contract, identity } = submission;
  logEvent("error", { event: "pipeline_crashed", runId: progress.runId, error: String(error), stack: error instanceof Error ? error.stack : undefined });
  const failure = new PlatformError("internal_error", "The run failed unexpectedly; nothing ran after the failure.", { cause: error });
  const policyHash = await deps.policy
    .computeSnapshot(identity.tenant)
    .then((hashed) => hashed.hash)
    .catch(() => NO_POLICY_HASH);
  const header = {
    runId: progress.runId,
    tenant: identity.tenant,
    actor: identity.actor,
    session: identity.session,
    contract: { id: contract.id, version: contract.version, class: contract.class },
    policyHash,
    decision: null,
  };
  const ledger = ledgerFor(deps.ledgers, identity.tenant, identity.session);
  if (progress.startSeq === null) {
    const empty = await sha256Hex("");
    const started = await appendEntry(
      ledger,
      {
        kind: "run.started",
        ...header,
        roles: identity.roles,
        lane: "interactive",
        codeSha256: empty,
        codeBytes: 0,
        inputSha256: empty,
        inputBytes: 0,
        intent: submission.intent,
        task: null,
        plan: null,
        profile: { capabilities: [], egressRules: 0 },
        deadlineAt: progress.receivedAt,
      },
      [],
      deps.reconcileGraceMs,
    );
    progress.startSeq = started.ok ? started.seq : null;
  }
  const outcome: SandboxOutcome = { termination: "failed", ...NOT_RUN, error: failure };
  if (progress.leased) {
    progress.leased = false;
    await returnSlot(deps, submission, progress.runId, {
      at: Date.now(),
      outcome: "granted",
      termination: "failed",
      queueMs: 0,
      startMs: null,
      execMs: null,
      totalMs: Date.now() - progress.receivedAt,
    });
  }
  if (progress.startSeq !== null) {
    await appendWithRetry(ledger, {
      kind: "run.finished",
      ...header,
      startSeq: progress.startSeq,
      termination: "failed",
      error: { code: failure.code, message: failure.message },
      latencyMs: { start: null, exec: null, total: Date.now() - progress.receivedAt },
      resultBytes: null,
      logs: { lines: 0, bytes: 0, truncated: false },
    });
  }
  return { runId: progress.runId, contract, policyHash, decision: null, outcome };
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

/** Appends one entry; a refusal or an unreachable ledger is logged and reported, never thrown. */
async function appendEntry(
  ledger: DurableObjectStub<SessionLedger>,
  entry: EvidenceEntry,
  spend: readonly TaskId[] = [],
  reconcileGraceMs?: number,
): Promise<
  { ok: true; seq: number; replayed: boolean; finished?: { termination: TerminationReason; activity: ActivitySummary } } | { ok: false; detail: string }
> {
  let detail: string;
  try {
    const result = await ledger.append(entry, { consume: spend, ...(reconcileGraceMs === undefined ? {} : { reconcileGraceMs }) });
    if (result.ok) return { ok: true, seq: result.seq, replayed: result.replayed, ...(result.finished ? { finished: result.finished } : {}) };
    detail = `${result.reason}: ${result.detail}`;
  } catch (error) {
    detail = String(error);
  }
  logEvent("error", { event: "evidence_write_failed", runId: entry.runId, stage: entry.kind, detail });
  return { ok: false, detail };
}

/** The run already happened: try twice, then leave the start record as the trace of an unfinished run. */
async function appendWithRetry(
  ledger: DurableObjectStub<SessionLedger>,
  entry: EvidenceEntry,
): Promise<{ termination: TerminationReason; activity: ActivitySummary } | undefined> {
  for (let attempt = 0; attempt < 2; attempt++) {
    const result = await appendEntry(ledger, entry);
    if (result.ok) return result.finished;
  }
  return undefined;
}
