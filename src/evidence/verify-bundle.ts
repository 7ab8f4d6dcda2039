// Checks an evidence bundle, or a series of range bundles as one chain, with nothing but
// the bundles and a JWKS you trust (or an explicit choice to trust the bundles' own keys):
// the signature over each range, every link of the hash chain (across bundles too), every
// record's own hash, every policy snapshot's hash. Runs the same in Node (`npm run
// verify`), in a browser (the viewer's verify button) and in a Worker. Every problem names
// the record (and the bundle) it is in.
import { createLocalJWKSet, type JWK, errors as joseErrors, jwtVerify } from "jose";
import { genesisHash, recordHash, sha256HexSync } from "./chain.ts";
import { canonicalJson } from "./digest.ts";
import {
  BUNDLE_FORMAT_V1,
  type BundleRecord,
  type EvidenceBundle,
  EvidenceBundleSchema,
  EXPORT_ISSUER,
  EXPORT_TYPE,
  type ExportClaims,
  ExportClaimsSchema,
  type Jwks,
  JwksSchema,
  NO_POLICY_HASH,
} from "./evidence-bundle.ts";

export type ProblemCode =
  | "bundle_malformed"
  | "signature_invalid"
  | "signature_key_unknown"
  | "signature_mismatch"
  | "genesis_mismatch"
  | "foreign_record"
  | "sequence_broken"
  | "record_altered"
  | "link_broken"
  | "head_mismatch"
  | "policy_altered"
  | "policy_missing"
  | "finish_unmatched"
  | "signature_key_untrusted"
  | "series_broken";

export type Problem = {
  code: ProblemCode;
  message: string;
  /** The record it is in: its position in its bundle (0-based) and the seq it claims. */
  record?: { index: number; seq: number; kind: string; runId: string };
  /** Which bundle of a series (0-based, in the order given); absent for a single bundle. */
  bundle?: number;
};

export type VerifyReport = {
  ok: boolean;
  tenant: string | null;
  session: string | null;
  records: number;
  runs: { total: number; open: number };
  policies: number;
  head: { seq: number; hash: string } | null;
  /** The records the bundle (or series) carries, by seq; null when unreadable. */
  range: { from: number; to: number } | null;
  /** Whether they are the whole session up to its signed head: from the genesis to the head. */
  complete: boolean;
  bundles: number;
  /** Who signed, and whether that key came from a JWKS the caller trusts or only from the bundle itself. */
  signature: { kid: string | null; alg: string | null; keySource: "trusted" | "bundle" } | null;
  /** The first problems found, in bundle order (at most 50)… */
  problems: Problem[];
  /** …of this many. */
  problemCount: number;
};

export type VerifyOptions = {
  /** The keys to trust (e.g. the server's /.well-known/jwks.json, fetched beforehand). */
  jwks?: unknown;
  /**
   * Without `jwks`, check the signature against the keys the bundle carries. A forger can
   * re-sign a bundle with keys of their own, so this proves only integrity, never origin:
   * without `jwks` and without this, the report is not ok (`signature_key_untrusted`).
   */
  trustBundleKeys?: boolean;
};

/** Problems past this many are counted, not listed: one edit should not bury the report. */
const MAX_LISTED = 50;

export async function verifyBundle(input: unknown, options: VerifyOptions = {}): Promise<VerifyReport> {
  return verifySeries([input], options);
}

/**
 * Verifies bundles as one chain: each one on its own (signature, hashes, links), and that
 * each range links to the one before it (the first record of one to the last of the
 * other), whatever order they are given in. A run that starts in one range and finishes
 * in another is matched across them.
 */
export async function verifySeries(inputs: readonly unknown[], options: VerifyOptions = {}): Promise<VerifyReport> {
  const problems: Problem[] = [];
  const series = inputs.length > 1;
  const bundles: Array<{ bundle: EvidenceBundle; position: number }> = [];
  for (const [position, input] of inputs.entries()) {
    const parsed = EvidenceBundleSchema.safeParse(input);
    if (parsed.success) {
      bundles.push({ bundle: parsed.data, position });
      continue;
    }
    const issue = parsed.error.issues[0];
    problems.push({
      code: "bundle_malformed",
      message: `Not an evidence bundle: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}.`,
      ...(series ? { bundle: position } : {}),
    });
  }
  if (bundles.length === 0 || problems.length > 0) return { ...emptyReport(), bundles: inputs.length, problems, problemCount: problems.length };

  const trusted = options.jwks !== undefined ? JwksSchema.safeParse(options.jwks) : null;
  if (trusted && !trusted.success) problems.push({ code: "bundle_malformed", message: "The trusted JWKS is not a JWK set ({ keys: [...] })." });
  const keySource = trusted ? "trusted" : "bundle";
  if (!trusted && !options.trustBundleKeys) {
    problems.push({
      code: "signature_key_untrusted",
      message:
        "The signature was checked only against keys the bundle carries, which anyone re-signing it could have put there: give the server's JWKS (--jwks), or say you trust the bundle's own keys (--trust-bundle-keys).",
    });
  }

  const spans: Array<{ position: number; first: Link; end: Link; bundle: EvidenceBundle; signed: Signed | null }> = [];
  let header: Signed["header"] | undefined;
  for (const { bundle, position } of bundles) {
    const add = (problem: Problem) => problems.push(series ? { ...problem, bundle: position } : problem);
    const signed = await checkSignature(bundle, trusted?.success ? trusted.data : bundle.keys, add);
    header ??= signed?.header;
    if (bundle.genesis !== genesisHash(bundle.tenant, bundle.session)) {
      add({ code: "genesis_mismatch", message: `The bundle's genesis is not that of tenant ${bundle.tenant}, session ${bundle.session}.` });
    }
    const first = startOf(bundle, add);
    const end = checkChain(bundle, first, add);
    checkEnd(bundle, signed, end, add);
    checkPolicies(bundle, add);
    spans.push({ position, first, end, bundle, signed });
  }

  spans.sort((a, b) => a.first.seq - b.first.seq);
  const [head] = spans;
  if (!head) return { ...emptyReport(), problems, problemCount: problems.length };
  for (const [index, span] of spans.entries()) {
    const before = spans[index - 1];
    if (!before) continue;
    const other = span.bundle.tenant !== head.bundle.tenant || span.bundle.session !== head.bundle.session;
    if (other || span.first.seq !== before.end.seq || span.first.hash !== before.end.hash) {
      problems.push({
        code: "series_broken",
        bundle: span.position,
        message: other
          ? `This bundle is tenant ${span.bundle.tenant}, session ${span.bundle.session}; the series is tenant ${head.bundle.tenant}, session ${head.bundle.session}.`
          : span.first.seq !== before.end.seq
            ? `This bundle starts after seq ${span.first.seq}, but the bundle before it in the chain ends at seq ${before.end.seq}: ${span.first.seq > before.end.seq ? `seqs ${before.end.seq + 1}–${span.first.seq} are in no bundle` : "the ranges overlap"}.`
            : `This bundle's first record links to a seq ${span.first.seq} other than the one the bundle before it ends with.`,
      });
    }
  }
  const records = spans.flatMap((span) => span.bundle.records.map((record, index) => ({ record, index, bundle: span.position })));
  const runs = checkRuns(records, head.first.seq, (problem, bundle) => problems.push(series ? { ...problem, bundle } : problem));
  const last = spans.at(-1) ?? head;
  const signedHead = last.signed?.claims.head ?? last.bundle.head;
  const policies = new Set(spans.flatMap((span) => Object.keys(span.bundle.policies)));
  return {
    ok: problems.length === 0,
    tenant: head.bundle.tenant,
    session: head.bundle.session,
    records: records.length,
    runs,
    policies: policies.size,
    head: signedHead,
    range: { from: head.first.seq + 1, to: last.end.seq },
    complete: head.first.seq === 0 && last.end.seq === signedHead.seq && last.end.hash === signedHead.hash,
    bundles: inputs.length,
    signature: { kid: header?.kid ?? null, alg: header?.alg ?? null, keySource },
    problems: problems.slice(0, MAX_LISTED),
    problemCount: problems.length,
  };
}

type Link = { seq: number; hash: string };

/** What a bundle's first record links to: its `prev` (format 2), or the genesis. */
function startOf(bundle: EvidenceBundle, add: (problem: Problem) => void): Link {
  if (bundle.format === BUNDLE_FORMAT_V1) return { seq: 0, hash: bundle.genesis };
  if (!bundle.prev || !bundle.range || !bundle.last) {
    add({ code: "bundle_malformed", message: `A ${bundle.format} bundle names its range, the record it links to (prev) and its last record.` });
    return { seq: 0, hash: bundle.genesis };
  }
  if (bundle.prev.seq === 0 && bundle.prev.hash !== bundle.genesis) {
    add({ code: "genesis_mismatch", message: "The bundle starts the session but does not link to its genesis." });
  }
  if (bundle.range.from !== bundle.prev.seq + 1 || bundle.range.to !== bundle.last.seq) {
    add({ code: "signature_mismatch", message: `The bundle's range ${bundle.range.from}–${bundle.range.to} is not the one its prev and last records name.` });
  }
  return bundle.prev;
}

function emptyReport(): VerifyReport {
  return {
    ok: false,
    tenant: null,
    session: null,
    records: 0,
    runs: { total: 0, open: 0 },
    policies: 0,
    head: null,
    range: null,
    complete: false,
    bundles: 1,
    signature: null,
    problems: [],
    problemCount: 0,
  };
}

function where(record: BundleRecord, index: number): NonNullable<Problem["record"]> {
  return { index, seq: record.seq, kind: record.kind, runId: record.runId };
}

type Signed = { claims: ExportClaims; header: { kid?: string; alg?: string } };

async function checkSignature(bundle: EvidenceBundle, jwks: Jwks, add: (problem: Problem) => void): Promise<Signed | null> {
  let header: { kid?: string; alg?: string } = {};
  try {
    const verified = await jwtVerify(bundle.signature, createLocalJWKSet(jwks as { keys: JWK[] }), {
      issuer: EXPORT_ISSUER,
      typ: EXPORT_TYPE,
      algorithms: ["EdDSA", "ES256"],
    });
    header = verified.protectedHeader;
    const claims = ExportClaimsSchema.safeParse(verified.payload);
    if (!claims.success) {
      add({ code: "signature_mismatch", message: `The signed claims are not an evidence export: ${claims.error.issues[0]?.message}.` });
      return null;
    }
    const signed = { claims: claims.data, header };
    const differs = [
      claims.data.tenant !== bundle.tenant && `tenant ${claims.data.tenant}`,
      claims.data.session !== bundle.session && `session ${claims.data.session}`,
      claims.data.genesis !== bundle.genesis && "another genesis",
      (claims.data.head.seq !== bundle.head.seq || claims.data.head.hash !== bundle.head.hash) &&
        `head seq ${claims.data.head.seq} (${claims.data.head.hash.slice(0, 12)}…)`,
      claims.data.records !== bundle.records.length && `${claims.data.records} records`,
      !sameLink(claims.data.prev, bundle.prev) && `prev ${claims.data.prev ? `seq ${claims.data.prev.seq}` : "(none)"}`,
      !sameLink(claims.data.last, bundle.last) && `last ${claims.data.last ? `seq ${claims.data.last.seq}` : "(none)"}`,
      (claims.data.range?.from !== bundle.range?.from || claims.data.range?.to !== bundle.range?.to) &&
        `range ${claims.data.range ? `${claims.data.range.from}–${claims.data.range.to}` : "(none)"}`,
    ].filter((text): text is string => typeof text === "string");
    if (differs.length > 0) {
      add({ code: "signature_mismatch", message: `The signature covers ${differs.join(", ")}; the bundle says otherwise.` });
    }
    return signed;
  } catch (error) {
    const unknownKey = error instanceof joseErrors.JWKSNoMatchingKey;
    add({
      code: unknownKey ? "signature_key_unknown" : "signature_invalid",
      message: unknownKey
        ? "No key in the JWKS matches the signature's kid and algorithm (was the key rotated out, or is this another server's bundle?)."
        : `The signature does not verify: ${error instanceof Error ? error.message : String(error)}.`,
    });
    return null;
  }
}

function sameLink(a: Link | undefined, b: Link | undefined): boolean {
  return a?.seq === b?.seq && a?.hash === b?.hash;
}

/** Walks the bundle's records from the link it starts at; answers where the chain ends. */
function checkChain(bundle: EvidenceBundle, start: Link, add: (problem: Problem) => void): Link {
  let previous = start;
  for (const [index, record] of bundle.records.entries()) {
    const at = where(record, index);
    if (record.tenant !== bundle.tenant || record.session !== bundle.session) {
      add({ code: "foreign_record", record: at, message: `Record seq ${record.seq} belongs to tenant ${record.tenant}, session ${record.session}.` });
    }
    const expected = previous.seq + 1;
    if (record.seq !== expected) {
      add({
        code: "sequence_broken",
        record: at,
        message:
          record.seq > expected
            ? `Record seq ${record.seq} follows seq ${previous.seq}: ${record.seq - expected === 1 ? `seq ${expected} is` : `seqs ${expected}–${record.seq - 1} are`} missing.`
            : `Record seq ${record.seq} follows seq ${previous.seq}: records are out of order or repeated.`,
      });
    }
    if (recordHash(record) !== record.hash) {
      add({
        code: "record_altered",
        record: at,
        message: `Record seq ${record.seq} (${record.kind}) does not match its own hash: it was changed after it was written.`,
      });
    }
    if (record.prevHash !== previous.hash) {
      add({
        code: "link_broken",
        record: at,
        message: `Record seq ${record.seq} does not link to the record before it (${previous.seq === 0 ? "the session's genesis" : `seq ${previous.seq}`}).`,
      });
    }
    previous = { seq: record.seq, hash: record.hash };
  }
  return previous;
}

/** The chain must end where the signature says: the range's last record (format 2) or the head (format 1). */
function checkEnd(bundle: EvidenceBundle, signed: Signed | null, end: Link, add: (problem: Problem) => void): void {
  const last = bundle.records.at(-1);
  const head = (bundle.format === BUNDLE_FORMAT_V1 ? signed?.claims.head : signed?.claims.last) ?? bundle.last ?? bundle.head;
  if (end.seq !== head.seq || end.hash !== head.hash) {
    add({
      code: "head_mismatch",
      ...(last ? { record: where(last, bundle.records.length - 1) } : {}),
      message: `The chain ends at seq ${end.seq} but its ${signed ? "signed " : ""}${bundle.format === BUNDLE_FORMAT_V1 ? "head" : "last record"} is seq ${head.seq}: ${
        end.seq < head.seq && bundle.records.every((r) => r.seq <= end.seq)
          ? "records were removed from the end"
          : "the last record is not the one the head names"
      }.`,
    });
  }
}

function checkPolicies(bundle: EvidenceBundle, add: (problem: Problem) => void): void {
  for (const [hash, snapshot] of Object.entries(bundle.policies)) {
    if (sha256HexSync(canonicalJson(snapshot)) !== hash) {
      add({ code: "policy_altered", message: `The policy snapshot filed under ${hash.slice(0, 12)}… does not hash to that name: it was changed.` });
    }
  }
  const reported = new Set<string>();
  for (const [index, record] of bundle.records.entries()) {
    if (record.policyHash === NO_POLICY_HASH || Object.hasOwn(bundle.policies, record.policyHash) || reported.has(record.policyHash)) continue;
    reported.add(record.policyHash);
    add({
      code: "policy_missing",
      record: where(record, index),
      message: `Record seq ${record.seq} points at policy ${record.policyHash.slice(0, 12)}…, which the bundle does not hold.`,
    });
  }
}

/** Every finish follows its run's start; one whose start lies before the first range (seq `after` or less) cannot be checked here. */
function checkRuns(
  records: ReadonlyArray<{ record: BundleRecord; index: number; bundle: number }>,
  after: number,
  add: (problem: Problem, bundle: number) => void,
): VerifyReport["runs"] {
  const starts = new Map<number, BundleRecord>();
  const finished = new Set<string>();
  for (const { record, index, bundle } of records) {
    if (record.kind === "run.started") starts.set(record.seq, record);
    if (record.kind !== "run.finished") continue;
    finished.add(record.runId);
    if (record.startSeq !== undefined && record.startSeq <= after) continue;
    const start = record.startSeq === undefined ? undefined : starts.get(record.startSeq);
    if (!start || start.runId !== record.runId) {
      add(
        {
          code: "finish_unmatched",
          record: where(record, index),
          message: `Record seq ${record.seq} finishes run ${record.runId}, but seq ${record.startSeq ?? "?"} before it is not that run's start.`,
        },
        bundle,
      );
    }
  }
  const total = starts.size;
  return { total, open: [...starts.values()].filter((start) => !finished.has(start.runId)).length };
}
