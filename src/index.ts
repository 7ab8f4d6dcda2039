// The Worker: its routes (src/routes.ts), its queue consumer, and the classes it exports
// (Durable Objects, and the entrypoints dynamic workers and capabilities are reached by).
import { type BatchMessage, consumeTask } from "./batch/index.ts";
import { logEvent } from "./log/index.ts";
import { platformFor } from "./platform.ts";
import { routes } from "./routes.ts";

export { ApprovalDesk } from "./approval/approval-desk.ts";
export { BatchRecord } from "./batch/batch-record.ts";
export { TenantBudget } from "./budget/tenant-budget.ts";
export { SessionLedger } from "./evidence/session-ledger.ts";
export { ConnectorBinding } from "./execution/capability-connector.ts";
export { DocsCapability } from "./execution/capability-docs.ts";
export { TrackerCapability } from "./execution/capability-tracker.ts";
export { EgressGateway } from "./execution/egress-gateway.ts";
export { SandboxHost } from "./execution/sandbox-host.ts";
export { TenantStore } from "./execution/tenant-store.ts";
export { PolicyArchive } from "./policy/policy-archive.ts";

export default {
  fetch: (request, env, ctx) => routes.fetch(request, env, ctx),

  /** The batch lane: at most 4 task messages per invocation (max_batch_size), run side by side. */
  async queue(batch, env, ctx) {
    const { consumer } = platformFor(env, ctx.exports);
    await Promise.all(
      batch.messages.map((message) =>
        consumeTask(message, consumer).catch((error: unknown) => {
          // the task stays claimed (its run, if any, is in the ledger); the message is not retried into a second run
          logEvent("error", { event: "batch_task_failed", ...message.body, error: String(error) });
          message.ack();
        }),
      ),
    );
  },
} satisfies ExportedHandler<Env, BatchMessage>;
