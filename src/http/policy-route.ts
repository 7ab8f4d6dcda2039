// GET /v1/policy/{hash}: the exact policy snapshot a run's evidence points at. The body
// is the snapshot's canonical JSON, byte for byte, so SHA-256(body) is the hash.
// Served to the snapshot's own tenant; anyone else gets 404.
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { archiveFor, type PolicyArchive } from "../policy/index.ts";
import { errorResponse } from "./error-response.ts";

export async function servePolicySnapshot(
  request: Request,
  hash: string,
  identity: Identity,
  archive: DurableObjectNamespace<PolicyArchive>,
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "Policy snapshots are read with GET."), { allow: "GET, HEAD" });
  }
  const notFound = () =>
    errorResponse(
      new PlatformError("not_found", "No policy snapshot with this hash for your tenant.", {
        hint: "Use the policyHash of one of your tenant's evidence records.",
      }),
    );
  if (!/^[0-9a-f]{64}$/.test(hash)) return notFound();
  const archived = await archiveFor(archive, hash).get(hash);
  if (!archived || archived.tenant !== identity.tenant) return notFound();
  return new Response(archived.canonical, {
    headers: {
      "content-type": "application/json",
      etag: `"${hash}"`,
      "cache-control": "private, max-age=31536000, immutable",
      "x-archived-at": archived.storedAt,
    },
  });
}
