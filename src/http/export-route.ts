// GET /v1/sessions/{sid}/export: the session's evidence as one signed bundle (see
// evidence/evidence-bundle.ts), for auditors to keep and to verify offline with
// `npm run verify`. Readable by the same callers as the evidence route; 404 otherwise.
import type { JWK } from "jose";
import { PlatformError } from "../errors/index.ts";
import {
  BUNDLE_FORMAT,
  type EvidenceBundle,
  type EvidenceRecord,
  EXPORT_ISSUER,
  type ExportClaims,
  type Jwks,
  type JwtSigner,
  ledgerFor,
  NO_POLICY_HASH,
  PAGE_LIMIT_MAX,
  type SessionLedger,
} from "../evidence/index.ts";
import type { Identity } from "../identity/index.ts";
import { archiveFor, type PolicyArchive } from "../policy/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";
import { noEvidence, readableSession } from "./evidence-route.ts";

/** One export carries at most this many records (about 2 KB each). */
export const EXPORT_MAX_RECORDS = 20_000;

export type ExportDeps = {
  ledgers: DurableObjectNamespace<SessionLedger>;
  archive: DurableObjectNamespace<PolicyArchive>;
  /** Null when no evidence key is configured. */
  signer: JwtSigner<ExportClaims> | null;
  /** What /.well-known/jwks.json publishes, copied into the bundle for convenience. */
  keys: JWK[];
};

export async function serveExport(request: Request, rawSession: string, identity: Identity, deps: ExportDeps): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "Evidence is exported with GET."), { allow: "GET, HEAD" });
  }
  const session = readableSession(rawSession, identity);
  if (session === null) return noEvidence();
  if (!deps.signer) {
    return errorResponse(new PlatformError("misconfigured", "No evidence-signing key is configured (EVIDENCE_SIGNING_KEY), so sessions cannot be exported."));
  }
  const ledger = ledgerFor(deps.ledgers, identity.tenant, session);
  const head = await ledger.head();
  if (!head) return noEvidence();
  if (head.seq > EXPORT_MAX_RECORDS) {
    return errorResponse(new PlatformError("export_too_large", `This session holds ${head.seq} records; one export carries at most ${EXPORT_MAX_RECORDS}.`));
  }

  // Up to the head read above: records appended meanwhile belong to the next export.
  const records: EvidenceRecord[] = [];
  for (let after = 0; after < head.seq; ) {
    const result = await ledger.page(after, PAGE_LIMIT_MAX);
    if (!result.ok) throw new PlatformError("internal_error", `The ledger refused a page: ${result.detail}`);
    records.push(...result.page.records.filter((record) => record.seq <= head.seq));
    if (result.page.nextCursor === null) break;
    after = result.page.nextCursor;
  }

  const hashes = [...new Set(records.map((record) => record.policyHash))].filter((hash) => hash !== NO_POLICY_HASH).sort();
  const archived = await Promise.all(hashes.map(async (hash) => [hash, await archiveFor(deps.archive, hash).get(hash)] as const));
  const policies: Record<string, unknown> = {};
  for (const [hash, snapshot] of archived) {
    // A missing snapshot is left out, not invented: the verifier reports it against the records that need it.
    if (snapshot && snapshot.tenant === identity.tenant) policies[hash] = JSON.parse(snapshot.canonical);
  }

  const claims: ExportClaims = {
    iss: EXPORT_ISSUER,
    tenant: identity.tenant,
    session,
    genesis: head.genesis,
    head: { seq: head.seq, hash: head.hash },
    records: records.length,
    policies: Object.keys(policies),
    iat: Math.floor(Date.now() / 1000),
  };
  let signature: string;
  try {
    signature = await deps.signer.sign(claims);
  } catch (error) {
    throw new PlatformError("misconfigured", "The evidence-signing key (EVIDENCE_SIGNING_KEY) could not be used.", { cause: error });
  }
  const bundle: EvidenceBundle = {
    format: BUNDLE_FORMAT,
    tenant: identity.tenant,
    session,
    exportedAt: new Date().toISOString(),
    genesis: head.genesis,
    head: claims.head,
    records,
    policies,
    signature,
    keys: { keys: deps.keys as Jwks["keys"] },
  };
  return jsonResponse(bundle, { headers: { "content-disposition": `attachment; filename="evidence-${identity.tenant}-${session}.json"` } });
}
