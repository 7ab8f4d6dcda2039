// Batch lane over HTTP:
//   POST /v1/batches              {tasks: [{contract, code, input?, dataClass?, plan?, task?}]} -> 202 {batchId, ...}
//   GET  /v1/batches/{id}         progress, and per task its run id and outcome (?cursor=&limit=)
//   GET  /v1/batches/{id}/evidence the evidence records of the batch's runs, by page of tasks
// A batch belongs to its submitter's tenant and session; its submitter and the tenant's
// auditors may read it, everyone else gets 404.
import { z } from "zod";
import { type BatchMessage, type BatchRecord, BatchSubmissionSchema, batchFor, checkBatch } from "../batch/index.ts";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { ledgerFor, readLedger, type SessionLedger } from "../evidence/index.ts";
import type { Identity } from "../identity/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";
import { AUDITOR_ROLE, safeDecode } from "./evidence-route.ts";

export const BATCHES_ROUTE = "/v1/batches";
const MAX_BODY_BYTES = 32 * 1024 * 1024;
const PageSchema = z.object({
  cursor: z.coerce.number().int().min(0).default(0),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});

export type BatchDeps = {
  batches: DurableObjectNamespace<BatchRecord>;
  queue: Queue<BatchMessage>;
  ledgers: DurableObjectNamespace<SessionLedger>;
  contracts: readonly Contract[];
};

export async function submitBatch(request: Request, identity: Identity, deps: BatchDeps): Promise<Response> {
  if (request.method !== "POST") return errorResponse(new PlatformError("method_not_allowed", "Submit a batch with POST."), { allow: "POST" });
  if (Number(request.headers.get("content-length") ?? 0) > MAX_BODY_BYTES) {
    return errorResponse(new PlatformError("bad_request", `The body is above ${MAX_BODY_BYTES} bytes.`, { hint: "Split the work into several batches." }));
  }
  let body: unknown;
  try {
    body = await request.json();
  } catch {
    return errorResponse(new PlatformError("bad_request", "The body is not JSON.", { hint: "Send {tasks: [{contract, code, input?}, …]} as JSON." }));
  }
  const submission = BatchSubmissionSchema.safeParse(body);
  if (!submission.success) {
    const issue = submission.error.issues[0];
    return errorResponse(
      new PlatformError("bad_request", `Field ${issue?.path.join(".") || "(body)"}: ${issue?.message}.`, { hint: "Send {tasks: [...]} with 1 to 1000 tasks." }),
    );
  }
  const checked = checkBatch(submission.data.tasks, deps.contracts);
  if (!checked.ok) return errorResponse(checked.error);

  const batchId = `batch_${crypto.randomUUID()}`;
  const owner = { tenant: identity.tenant, actor: identity.actor, session: identity.session, roles: identity.roles };
  const created = await batchFor(deps.batches, identity.tenant, batchId).create(
    batchId,
    owner,
    checked.tasks.map((task) => JSON.stringify(task)),
  );
  if (!created.ok) throw new PlatformError("internal_error", "A batch id was used twice.");
  // one message per task, in sendBatch chunks of 100 (the Queues limit per call)
  const messages = checked.tasks.map((_, index) => ({
    body: { tenant: identity.tenant, batchId, index } satisfies BatchMessage,
    contentType: "json" as const,
  }));
  for (let at = 0; at < messages.length; at += 100) await deps.queue.sendBatch(messages.slice(at, at + 100));
  return jsonResponse(
    {
      batchId,
      tasks: checked.tasks.length,
      session: identity.session,
      status: `${BATCHES_ROUTE}/${batchId}`,
      evidence: `${BATCHES_ROUTE}/${batchId}/evidence`,
    },
    { status: 202 },
  );
}

export async function serveBatch(request: Request, rawId: string, evidence: boolean, identity: Identity, deps: BatchDeps): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "Batches are read with GET."), { allow: "GET, HEAD" });
  }
  const page = PageSchema.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!page.success) {
    return errorResponse(new PlatformError("bad_request", `Query: ${page.error.issues[0]?.message}.`, { hint: "Use ?cursor=<nextCursor>&limit=<1..500>." }));
  }
  const batchId = safeDecode(rawId);
  const view =
    batchId && /^batch_[0-9a-f-]{36}$/.test(batchId) ? await batchFor(deps.batches, identity.tenant, batchId).view(page.data.cursor, page.data.limit) : null;
  const mayRead = view && (view.owner.actor === identity.actor || identity.roles.includes(AUDITOR_ROLE));
  if (!view || !mayRead) return errorResponse(new PlatformError("not_found", "No such batch for this caller."));
  if (!evidence) {
    const { tasks, ...rest } = view;
    return jsonResponse({
      ...rest,
      tasks: tasks.map(({ outcomeJson, ...task }) => ({ ...task, outcome: outcomeJson === null ? null : (JSON.parse(outcomeJson) as unknown) })),
    });
  }
  const runIds = view.tasks.flatMap((t) => (t.runId ? [t.runId] : []));
  const ledger = ledgerFor(deps.ledgers, view.owner.tenant, view.owner.session);
  const records = await readLedger(view.owner.session, async () => await ledger.recordsOfRuns(runIds));
  return jsonResponse({ batchId: view.batchId, tenant: view.owner.tenant, session: view.owner.session, records, nextCursor: view.nextCursor });
}
