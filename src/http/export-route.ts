// GET /v1/sessions/{sid}/export[?from=&to=]: a range of the session's evidence as one
// signed bundle (see evidence/evidence-bundle.ts), for auditors to keep and to verify
// offline with `npm run verify`. Readable by the same callers as the evidence route; 404
// otherwise. The ledger checks the range's chain before anything is signed (a broken one
// is refused, naming its first broken record), and the records are streamed page by
// page, so a session of any size exports in bounded memory, one range at a time.
import type { JWK } from "jose";
import { PlatformError } from "../errors/index.ts";
import {
  BUNDLE_FORMAT,
  type EvidenceRecord,
  EXPORT_ISSUER,
  type ExportClaims,
  type JwtSigner,
  ledgerFor,
  NO_POLICY_HASH,
  PAGE_LIMIT_MAX,
  readLedger,
  type SessionLedger,
} from "../evidence/index.ts";
import type { Identity } from "../identity/index.ts";
import { logEvent } from "../log/index.ts";
import { archiveFor, type PolicyArchive } from "../policy/index.ts";
import { errorResponse } from "./error-response.ts";
import { noEvidence, readableSession } from "./evidence-route.ts";

/** One bundle carries at most this many records (about 2 KB each); a larger session exports as a series of ranges. */
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
  const head = await readLedger(session, async () => await ledger.head());
  if (!head) return noEvidence();
  const range = requestedRange(new URL(request.url).searchParams, head.seq);
  if (range instanceof PlatformError) return errorResponse(range);

  // The chain as storage holds it, checked by the ledger before anything is signed.
  const checked = await readLedger(session, async () => await ledger.checkRange(range.from, range.to));
  if (!checked.ok) {
    if (checked.reason === "bad_range") return errorResponse(new PlatformError("bad_request", `No records ${range.from}-${range.to}: ${checked.detail}.`));
    const { broken } = checked;
    logEvent("error", { event: "evidence_broken", tenant: identity.tenant, session, ...broken });
    return errorResponse(
      new PlatformError(
        "evidence_broken",
        `The session's stored chain does not hold at record seq ${broken.seq} (${broken.kind}${broken.runId ? `, ${broken.runId}` : ""}): ${broken.problem}. Nothing was signed.`,
      ),
    );
  }

  const hashes = checked.policyHashes.filter((hash) => hash !== NO_POLICY_HASH);
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
    genesis: checked.genesis,
    head: { seq: head.seq, hash: head.hash },
    records: checked.records,
    range,
    prev: checked.prev,
    last: checked.last,
    policies: Object.keys(policies),
    iat: Math.floor(Date.now() / 1000),
  };
  let signature: string;
  try {
    signature = await deps.signer.sign(claims);
  } catch (error) {
    throw new PlatformError("misconfigured", "The evidence-signing key (EVIDENCE_SIGNING_KEY) could not be used.", { cause: error });
  }
  const opening = {
    format: BUNDLE_FORMAT,
    tenant: identity.tenant,
    session,
    exportedAt: new Date().toISOString(),
    genesis: checked.genesis,
    head: claims.head,
    range,
    prev: checked.prev,
    last: checked.last,
    policies,
    signature,
    keys: { keys: deps.keys },
  };
  const headers = new Headers({
    "content-type": "application/json",
    "cache-control": "no-store",
    "content-disposition": `attachment; filename="evidence-${identity.tenant}-${session}-${range.from}-${range.to}.json"`,
  });
  if (range.to < head.seq) {
    const next = Math.min(head.seq, range.to + EXPORT_MAX_RECORDS);
    headers.set("link", `</v1/sessions/${encodeURIComponent(session)}/export?from=${range.to + 1}&to=${next}>; rel="next"`);
  }
  if (request.method === "HEAD") return new Response(null, { headers });
  return new Response(
    streamBundle(opening, (after, limit) => pageOf(ledger, session, after, limit), checked.prev, checked.last),
    { headers },
  );
}

/** `from`/`to` from the query (both optional): the first range of at most EXPORT_MAX_RECORDS by default. */
function requestedRange(query: URLSearchParams, headSeq: number): { from: number; to: number } | PlatformError {
  const read = (name: "from" | "to"): number | null | PlatformError => {
    const text = query.get(name);
    if (text === null) return null;
    return /^[1-9][0-9]{0,15}$/.test(text)
      ? Number(text)
      : new PlatformError("bad_request", `${name} must be a record's sequence number (1 or more), not ${JSON.stringify(text.slice(0, 40))}.`);
  };
  const from = read("from");
  const to = read("to");
  if (from instanceof PlatformError) return from;
  if (to instanceof PlatformError) return to;
  const start = from ?? 1;
  const end = to ?? Math.min(headSeq, start + EXPORT_MAX_RECORDS - 1);
  if (start > headSeq || end > headSeq) return new PlatformError("bad_request", `The session holds records 1 to ${headSeq}; asked for ${start} to ${end}.`);
  if (end < start) return new PlatformError("bad_request", `to (${end}) is before from (${start}).`);
  if (end - start + 1 > EXPORT_MAX_RECORDS) {
    return new PlatformError("export_too_large", `Records ${start} to ${end} are ${end - start + 1}; one bundle carries at most ${EXPORT_MAX_RECORDS}.`);
  }
  return { from: start, to: end };
}

async function pageOf(ledger: ReturnType<typeof ledgerFor>, session: string, after: number, limit: number): Promise<EvidenceRecord[]> {
  const result = await readLedger(session, async () => await ledger.page(after, limit));
  if (!result.ok) throw new PlatformError("internal_error", `The ledger refused a page: ${result.detail}`);
  return result.page.records;
}

/**
 * The bundle as JSON text, records last and one page at a time. What is streamed must be
 * the chain the ledger checked: each record links to the one before, and the last is the
 * signed one; otherwise the stream fails (the bundle would not parse, so nothing broken
 * passes for a bundle).
 */
function streamBundle(
  opening: Record<string, unknown>,
  page: (after: number, limit: number) => Promise<EvidenceRecord[]>,
  prev: { seq: number; hash: string },
  last: { seq: number; hash: string },
): ReadableStream<Uint8Array> {
  const encoder = new TextEncoder();
  let at = prev;
  let started = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (!started) {
        started = true;
        controller.enqueue(encoder.encode(`${JSON.stringify(opening).slice(0, -1)},"records":[`));
        return;
      }
      if (at.seq >= last.seq) {
        controller.enqueue(encoder.encode("]}"));
        controller.close();
        return;
      }
      const records = (await page(at.seq, Math.min(PAGE_LIMIT_MAX, last.seq - at.seq))).filter((record) => record.seq <= last.seq);
      const parts: string[] = [];
      for (const record of records) {
        if (record.seq !== at.seq + 1 || record.prevHash !== at.hash) {
          controller.error(new PlatformError("evidence_broken", `Record seq ${record.seq} changed while it was exported.`));
          return;
        }
        parts.push(JSON.stringify(record));
        at = { seq: record.seq, hash: record.hash };
      }
      if (records.length === 0 || (at.seq === last.seq && at.hash !== last.hash)) {
        controller.error(new PlatformError("evidence_broken", `The records ended at seq ${at.seq}, not at the checked seq ${last.seq}.`));
        return;
      }
      controller.enqueue(encoder.encode(`${records[0]?.seq === prev.seq + 1 ? "" : ","}${parts.join(",")}`));
    },
  });
}
