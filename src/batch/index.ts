// Batch lane: POST /v1/batches, the queue consumer, and the per-batch record.

// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only.
export type { BatchOwner, BatchRecord, BatchTaskView, BatchView, TaskState } from "./batch-record.ts";
export {
  BATCH_MAX_DELIVERIES,
  BATCH_MAX_TASKS,
  type BatchMessage,
  BatchSubmissionSchema,
  type BatchTask,
  BatchTaskSchema,
  batchFor,
  type ConsumerDeps,
  checkBatch,
  consumeTask,
} from "./batch-work.ts";
