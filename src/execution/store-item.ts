// What a tenant's store holds (see tenant-store.ts), and how to find a tenant's store.
import { z } from "zod";

export const StoreKindSchema = z.enum(["doc", "log", "metric"]);
export const StoreItemSchema = z
  .object({
    kind: StoreKindSchema,
    key: z.string().min(1).max(256),
    /** Milliseconds since the epoch: when a log line or metric point happened, when a doc changed. */
    ts: z.int().min(0).optional(),
    body: z.unknown(),
  })
  .strict();
export type StoreItem = z.infer<typeof StoreItemSchema>;
export type StoredItem = { kind: string; key: string; ts: number; body: unknown };

/** One store per tenant: no query can reach another tenant's data. */
export function storeFor<Store extends Rpc.DurableObjectBranded>(namespace: DurableObjectNamespace<Store>, tenant: string): DurableObjectStub<Store> {
  return namespace.getByName(`tenant:${tenant}`);
}
