// Batch work: POST /v1/batches stores a batch's tasks and queues one message per task;
// the queue consumer runs them on the batch lane, never through the interactive lane's
// budget or queue. The consumer takes a batch-lane slot before it starts a run; when there
// is none, the message goes back to the queue with a delay (the queue is the batch lane's
// wait line). On its last delivery a task runs through the pipeline as is, so a task that
// never found a slot ends as a recorded over_budget run, not as a dropped message.
import { z } from "zod";
import { DEFAULT_BUDGET, endRun, type SlotResult } from "../budget/index.ts";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { TaskTrust } from "../execution/index.ts";
import { deadlineOf, newRunId, type RunReport, runEnvelope, type SubmitDeps, submitPlannerTask, submitTask } from "../intent/index.ts";
import type { PolicySet } from "../policy/index.ts";
import type { BatchOwner, BatchRecord } from "./batch-record.ts";

/** At most this many tasks per batch. */
export const BATCH_MAX_TASKS = 1_000;
/** A message is delivered at most this often (wrangler.toml max_retries + 1); the last delivery runs regardless. */
export const BATCH_MAX_DELIVERIES = 100;

export const BatchTaskSchema = z
  .object({
    /** The contract by id, or its MCP tool name. */
    contract: z.string().min(1).max(128),
    code: z.string(),
    input: z.unknown().optional(),
    dataClass: z.string().max(32).optional(),
    plan: z.unknown().optional(),
    /** A planner-signed task (as for POST /v1/tasks); without it the bearer's own authority applies. */
    task: z.string().max(16_384).optional(),
  })
  .strict();
export type BatchTask = z.infer<typeof BatchTaskSchema>;

export const BatchSubmissionSchema = z.object({ tasks: z.array(z.unknown()).min(1).max(BATCH_MAX_TASKS) }).strict();

export type BatchMessage = { tenant: string; batchId: string; index: number };

export function batchFor(namespace: DurableObjectNamespace<BatchRecord>, tenant: string, batchId: string): DurableObjectStub<BatchRecord> {
  return namespace.getByName(`tenant:${tenant}/batch:${batchId}`);
}

/** Each task checked up front (shape and contract); the first problem names the task. */
export function checkBatch(tasks: readonly unknown[], contracts: readonly Contract[]): { ok: true; tasks: BatchTask[] } | { ok: false; error: PlatformError } {
  const checked: BatchTask[] = [];
  for (const [index, raw] of tasks.entries()) {
    const parsed = BatchTaskSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return {
        ok: false,
        error: new PlatformError("bad_request", `tasks[${index}].${issue?.path.join(".") || "(task)"}: ${issue?.message}.`, {
          hint: "Each task is {contract, code, input?, dataClass?, plan?, task?}; contract is a contract id or tool name from GET /.",
        }),
      };
    }
    if (!contractOf(parsed.data.contract, contracts)) {
      return { ok: false, error: new PlatformError("bad_request", `tasks[${index}].contract: no contract or tool is named "${parsed.data.contract}".`) };
    }
    checked.push(parsed.data);
  }
  return { ok: true, tasks: checked };
}

function contractOf(name: string, contracts: readonly Contract[]): Contract | undefined {
  return contracts.find((c) => c.id === name) ?? contracts.find((c) => c.tool === name);
}

export type ConsumerDeps = {
  submit: SubmitDeps;
  batches: DurableObjectNamespace<BatchRecord>;
  contracts: readonly Contract[];
  policy: PolicySet;
  planners: TaskTrust;
};

/** One delivery of one task message: run it, defer it (no slot yet), or drop a duplicate. */
export async function consumeTask(message: Message<BatchMessage>, deps: ConsumerDeps): Promise<void> {
  const { tenant, batchId, index } = message.body;
  const record = batchFor(deps.batches, tenant, batchId);
  const runId = newRunId();
  const claimed = await record.claim(index, runId);
  if (!claimed.ok) {
    // done, or already running under an earlier delivery (its run is in the ledger): nothing runs twice
    message.ack();
    return;
  }
  const task = JSON.parse(claimed.taskJson) as BatchTask;
  const contract = contractOf(task.contract, deps.contracts);
  if (!contract) {
    const error = new PlatformError("not_found", `No contract or tool is named "${task.contract}" any more; the task did not run.`);
    await record.complete(index, runId, "denied", JSON.stringify({ runId, termination: "denied", error }));
    message.ack();
    return;
  }
  const lastDelivery = message.attempts >= BATCH_MAX_DELIVERIES;
  const budget = Object.hasOwn(deps.policy.tenants, tenant) ? (deps.policy.tenants[tenant]?.budget ?? DEFAULT_BUDGET) : DEFAULT_BUDGET;
  const queuedMs = Date.now() - claimed.queuedSinceMs;
  let slot: SlotResult | undefined;
  if (!lastDelivery) {
    const asked = await deps.submit.leases.acquire(
      tenant,
      runId,
      { ...contract, backpressure: { mode: "reject", maxWaitMs: 1 } },
      "batch",
      budget,
      deadlineOf(0, contract),
    );
    if (!asked.ok) {
      await record.defer(index);
      const retryAfterMs = asked.slot?.outcome === "rejected" ? asked.slot.retryAfterMs : 1_000;
      message.retry({ delaySeconds: Math.min(30, Math.max(1, Math.ceil(retryAfterMs / 1_000))) });
      return;
    }
    slot = { ...asked, slot: { ...asked.slot, queuedMs } };
  }
  const identity = { ...claimed.owner, expiresAt: 0 };
  const batch = { lane: "batch" as const, batch: { id: batchId, index }, runId, ...(slot ? { slot } : {}) };
  let report: RunReport;
  if (task.task !== undefined) {
    const submitted = await submitPlannerTask(deps.submit, identity, { ...plannerBody(task), contract: contract.id }, deps.contracts, deps.planners, batch);
    if (!submitted.ok) {
      await endRun(deps.submit.leases, slot ?? null, { tenant, runId, receivedAt: Date.now(), termination: "denied", latencyMs: { start: null, exec: null } });
      await record.complete(index, runId, "denied", JSON.stringify({ runId, termination: "denied", error: submitted.error }));
      message.ack();
      return;
    }
    report = submitted.report;
  } else {
    report = await submitTask(deps.submit, { contract, identity, arguments: argumentsOf(task), intent: { source: "batch" }, ...batch });
  }
  const envelope = runEnvelope(report);
  await record.complete(index, report.runId, envelope.termination, JSON.stringify(envelope));
  message.ack();
}

function argumentsOf(task: BatchTask): Record<string, unknown> {
  return {
    code: task.code,
    ...(task.input !== undefined ? { input: task.input } : {}),
    ...(task.dataClass !== undefined ? { dataClass: task.dataClass } : {}),
    ...(task.plan !== undefined ? { plan: task.plan } : {}),
  };
}

function plannerBody(task: BatchTask): Record<string, unknown> {
  return {
    task: task.task,
    code: task.code,
    ...(task.input !== undefined ? { input: task.input } : {}),
    ...(task.dataClass !== undefined ? { dataClass: task.dataClass } : {}),
  };
}

export type { BatchOwner };
