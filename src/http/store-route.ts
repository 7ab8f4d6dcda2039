// POST /v1/store/items: loads documents, logs and metrics into the caller's own tenant
// store, which sandboxed code reads through the docs capability. Needs the store_admin role.
import { z } from "zod";
import { PlatformError } from "../errors/index.ts";
import { StoreItemSchema, storeFor, type TenantStore } from "../execution/index.ts";
import type { Identity } from "../identity/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const STORE_ROUTE = "/v1/store/items";
export const STORE_ADMIN_ROLE = "store_admin";

const BodySchema = z.object({ items: z.array(StoreItemSchema).min(1).max(1_000) }).strict();

export async function serveStoreItems(request: Request, identity: Identity, stores: DurableObjectNamespace<TenantStore>): Promise<Response> {
  if (request.method !== "POST") return errorResponse(new PlatformError("method_not_allowed", "Load items with POST."), { allow: "POST" });
  if (!identity.roles.includes(STORE_ADMIN_ROLE)) {
    return errorResponse(new PlatformError("not_found", "No such route for this caller.", { hint: `Loading the store needs the ${STORE_ADMIN_ROLE} role.` }));
  }
  const body = BodySchema.safeParse(await request.json().catch(() => null));
  if (!body.success) {
    const issue = body.error.issues[0];
    return errorResponse(
      new PlatformError("bad_request", `Field ${issue?.path.join(".") || "(body)"}: ${issue?.message}.`, {
        hint: 'Send {"items": [{"kind": "doc"|"log"|"metric", "key", "ts"?, "body"}]}.',
      }),
    );
  }
  const stored = await storeFor(stores, identity.tenant).putItems(body.data.items);
  if (!stored.ok) return errorResponse(new PlatformError("bad_request", stored.detail));
  return jsonResponse({ tenant: identity.tenant, stored: stored.stored });
}
