// Batch lane: POST /v1/batches, the queue consumer, and the per-batch record.

// The Durable Object class is exported by the Worker's root (src/index.ts); layers see its type only.
export type { BatchRecord } from "./batch-record.ts";
export { type BatchMessage, BatchSubmissionSchema, batchFor, type ConsumerDeps, checkBatch, consumeTask } from "./batch-work.ts";
