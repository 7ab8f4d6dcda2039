// `env.DOCS` in the sandbox: read-only access to the tenant's documents, logs and metrics.
// It has write methods only to refuse them (and record the attempt).
import { z } from "zod";
import { type BindingSelf, CapabilityBinding, ownTenantOnly, recordedCall, selfOf } from "./capability-base.ts";
import { capabilityError } from "./capability-error.ts";
import { type StoredItem, StoreKindSchema, storeFor } from "./store-item.ts";

const ListOptions = z
  .object({ prefix: z.string().max(256).default(""), after: z.string().max(256).default(""), limit: z.int().min(1).max(200).default(50) })
  .strict();
const SearchOptions = z.object({ kind: StoreKindSchema.optional(), limit: z.int().min(1).max(200).default(20) }).strict();
const MetricOptions = z.object({ from: z.int().min(0).default(0), to: z.int().min(0).optional(), limit: z.int().min(1).max(200).default(200) }).strict();

const storeOf = (self: BindingSelf) => storeFor(self.env.TENANT_STORE, self.ctx.props.tenant);

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw capabilityError("invalid_request", `${what}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

export class DocsCapability extends CapabilityBinding {
  protected readonly capability = "docs" as const;

  async get(kind: unknown, key: unknown): Promise<StoredItem | null> {
    return recordedCall(selfOf(this), "get", async () =>
      storeOf(selfOf(this)).get(parse(StoreKindSchema, kind, "kind"), parse(z.string().min(1).max(256), key, "key")),
    );
  }

  async list(kind: unknown, options: unknown = {}): Promise<StoredItem[]> {
    return recordedCall(selfOf(this), "list", async () => {
      ownTenantOnly(selfOf(this), options);
      const o = parse(ListOptions, options, "options");
      return storeOf(selfOf(this)).list(parse(StoreKindSchema, kind, "kind"), o.prefix, o.after, o.limit);
    });
  }

  async search(text: unknown, options: unknown = {}): Promise<StoredItem[]> {
    return recordedCall(selfOf(this), "search", async () => {
      ownTenantOnly(selfOf(this), options);
      const o = parse(SearchOptions, options, "options");
      return storeOf(selfOf(this)).search(parse(z.string().min(1).max(200), text, "text"), o.kind ?? null, o.limit);
    });
  }

  async metrics(name: unknown, options: unknown = {}): Promise<StoredItem[]> {
    return recordedCall(selfOf(this), "metrics", async () => {
      ownTenantOnly(selfOf(this), options);
      const o = parse(MetricOptions, options, "options");
      return storeOf(selfOf(this)).metric(parse(z.string().min(1).max(128), name, "name"), o.from, o.to ?? Number.MAX_SAFE_INTEGER, o.limit);
    });
  }

  async put(): Promise<never> {
    return recordedCall(selfOf(this), "put", async () => {
      throw capabilityError("capability_denied", "docs is read-only: put is not allowed");
    });
  }

  async delete(): Promise<never> {
    return recordedCall(selfOf(this), "delete", async () => {
      throw capabilityError("capability_denied", "docs is read-only: delete is not allowed");
    });
  }
}
