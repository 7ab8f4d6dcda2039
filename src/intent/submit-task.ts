// The path a tool call takes once its caller is known: intake -> policy (decide on the
// tenant's snapshot) -> evidence (start) -> execution -> evidence (finish). The start is
// recorded before any task code runs; if it cannot be, nothing runs (fail closed).
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { type EvidenceEntry, ledgerFor, type RunStarted, type SessionLedger } from "../evidence/index.ts";
import { type SandboxOutcome, startSandbox } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { type Decision, decide, type HashedSnapshot, type PolicyInForce, refusalError } from "../policy/index.ts";
import { buildTask } from "./build-task.ts";
import { newRunId } from "./task.ts";

export type SubmitDeps = {
  loader: WorkerLoader;
  ledgers: DurableObjectNamespace<SessionLedger>;
  policy: PolicyInForce;
};

export type RunReport = { runId: string; contract: Contract; policyHash: string; decision: Decision | null; outcome: SandboxOutcome };

const NOT_RUN = { resultBytes: null, logs: { lines: [], bytes: 0, truncated: false }, latencyMs: { start: null, exec: null } };

export async function submitToolCall(deps: SubmitDeps, contract: Contract, identity: Identity, rawArguments: unknown): Promise<RunReport> {
  const receivedAt = Date.now();
  const runId = newRunId();
  const built = await buildTask({ runId, receivedAt, identity, contract }, rawArguments);
  const digests = built.ok ? built.task : built.digests;

  const policy = await archivedSnapshot(deps.policy, identity.tenant);
  const decision: Decision | null =
    built.ok && policy.ok
      ? decide(
          { tenant: identity.tenant, actor: identity.actor, roles: identity.roles, contractId: contract.id, dataClass: built.task.dataClass },
          policy.hashed.snapshot,
        )
      : null;
  const policyHash = policy.hashed.hash;

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
    lane: "interactive",
    codeSha256: digests.codeSha256,
    codeBytes: digests.codeBytes,
    inputSha256: digests.inputSha256,
    inputBytes: digests.inputBytes,
    intent: { source: "mcp" },
  };

  const ledger = ledgerFor(deps.ledgers, identity.tenant, identity.session);
  // An allowed task's isolate boots while its start is recorded. Booting evaluates only
  // the harness; the task's code is imported by run(), after the record is durable.
  const sandbox =
    built.ok && decision?.outcome === "allow" ? startSandbox(deps.loader, { runId, contract, code: built.task.code, input: built.task.input }) : undefined;
  const [appended] = await Promise.all([appendEntry(ledger, started), sandbox?.booted]);
  if (!appended.ok) {
    const outcome: SandboxOutcome = {
      termination: "failed",
      ...NOT_RUN,
      error: new PlatformError("evidence_unavailable", "The run's evidence could not be recorded, so it did not run.", { cause: appended.detail }),
    };
    return { runId, contract, policyHash, decision, outcome };
  }

  const refusal = !built.ok
    ? built.error
    : !policy.ok
      ? policy.error
      : decision && decision.outcome !== "allow"
        ? refusalError(decision, policyHash, contract.id)
        : undefined;
  const outcome: SandboxOutcome = sandbox
    ? await sandbox.run()
    : { termination: refusal?.code === "policy_unavailable" ? "failed" : "denied", ...NOT_RUN, error: refusal };

  const finished: EvidenceEntry = {
    kind: "run.finished",
    ...header,
    startSeq: appended.seq,
    termination: outcome.termination,
    ...(outcome.error ? { error: { code: outcome.error.code, message: outcome.error.message.slice(0, 1_000) } } : {}),
    latencyMs: { ...outcome.latencyMs, total: Date.now() - receivedAt },
    resultBytes: outcome.resultBytes,
    logs: { lines: outcome.logs.lines.length, bytes: outcome.logs.bytes, truncated: outcome.logs.truncated },
  };
  await appendWithRetry(ledger, finished);
  return { runId, contract, policyHash, decision, outcome };
}

/** The tenant's snapshot, archived before any record points at it. The hash is known even when archiving fails. */
async function archivedSnapshot(
  policy: PolicyInForce,
  tenant: string,
): Promise<{ ok: true; hashed: HashedSnapshot } | { ok: false; hashed: HashedSnapshot; error: PlatformError }> {
  try {
    return { ok: true, hashed: await policy.snapshotFor(tenant) };
  } catch (error) {
    console.error(JSON.stringify({ event: "policy_archive_failed", tenant, error: String(error) }));
    return {
      ok: false,
      hashed: await policy.computeSnapshot(tenant),
      error: new PlatformError("policy_unavailable", "The policy snapshot could not be archived, so nothing ran.", { cause: error }),
    };
  }
}

/** Appends one entry; a refusal or an unreachable ledger is logged and reported, never thrown. */
async function appendEntry(ledger: DurableObjectStub<SessionLedger>, entry: EvidenceEntry): Promise<{ ok: true; seq: number } | { ok: false; detail: string }> {
  let detail: string;
  try {
    const result = await ledger.append(entry);
    if (result.ok) return { ok: true, seq: result.seq };
    detail = `${result.reason}: ${result.detail}`;
  } catch (error) {
    detail = String(error);
  }
  console.error(JSON.stringify({ event: "evidence_write_failed", runId: entry.runId, stage: entry.kind, detail }));
  return { ok: false, detail };
}

/** The run already happened: try twice, then leave the start record as the trace of an unfinished run. */
async function appendWithRetry(ledger: DurableObjectStub<SessionLedger>, entry: EvidenceEntry): Promise<void> {
  if ((await appendEntry(ledger, entry)).ok) return;
  await appendEntry(ledger, entry);
}
