// Checks an evidence bundle with nothing but the bundle (and, better, a JWKS you trust):
// the signature over the head, every link of the hash chain, every record's own hash,
// every policy snapshot's hash. Runs the same in Node (`npm run verify`), in a browser
// (the viewer's verify button) and in a Worker. Every problem names the record it is in.
import { createLocalJWKSet, type JWK, errors as joseErrors, jwtVerify } from "jose";
import { genesisHash, recordHash, sha256HexSync } from "./chain.ts";
import { canonicalJson } from "./digest.ts";
import {
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
  | "finish_unmatched";

export type Problem = {
  code: ProblemCode;
  message: string;
  /** The record it is in: its position in the bundle (0-based) and the seq it claims. */
  record?: { index: number; seq: number; kind: string; runId: string };
};

export type VerifyReport = {
  ok: boolean;
  tenant: string | null;
  session: string | null;
  records: number;
  runs: { total: number; open: number };
  policies: number;
  head: { seq: number; hash: string } | null;
  /** Who signed, and whether that key came from a JWKS the caller trusts or only from the bundle itself. */
  signature: { kid: string | null; alg: string | null; keySource: "trusted" | "bundle" } | null;
  /** The first problems found, in bundle order (at most 50)… */
  problems: Problem[];
  /** …of this many. */
  problemCount: number;
};

export type VerifyOptions = {
  /** The keys to trust (e.g. the server's /.well-known/jwks.json, fetched beforehand). Without it, the bundle's own keys are used and the report says so. */
  jwks?: unknown;
};

/** Problems past this many are counted, not listed: one edit should not bury the report. */
const MAX_LISTED = 50;

export async function verifyBundle(input: unknown, options: VerifyOptions = {}): Promise<VerifyReport> {
  const parsed = EvidenceBundleSchema.safeParse(input);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ...emptyReport(),
      problems: [{ code: "bundle_malformed", message: `Not an evidence bundle: ${issue?.path.join(".") || "(root)"}: ${issue?.message ?? "invalid"}.` }],
      problemCount: 1,
    };
  }
  const bundle = parsed.data;
  const problems: Problem[] = [];
  const add = (problem: Problem) => problems.push(problem);

  const trusted = options.jwks !== undefined ? JwksSchema.safeParse(options.jwks) : null;
  if (trusted && !trusted.success) add({ code: "bundle_malformed", message: "The trusted JWKS is not a JWK set ({ keys: [...] })." });
  const keySource = trusted ? "trusted" : "bundle";
  const signed = await checkSignature(bundle, trusted?.success ? trusted.data : bundle.keys, add);

  if (bundle.genesis !== genesisHash(bundle.tenant, bundle.session)) {
    add({ code: "genesis_mismatch", message: `The bundle's genesis is not that of tenant ${bundle.tenant}, session ${bundle.session}.` });
  }
  checkChain(bundle, add);
  checkHead(bundle, signed, add);
  const policies = checkPolicies(bundle, add);
  const runs = checkRuns(bundle.records, add);

  const header = signed?.header;
  return {
    ok: problems.length === 0,
    tenant: bundle.tenant,
    session: bundle.session,
    records: bundle.records.length,
    runs,
    policies,
    head: bundle.head,
    signature: { kid: header?.kid ?? null, alg: header?.alg ?? null, keySource },
    problems: problems.slice(0, MAX_LISTED),
    problemCount: problems.length,
  };
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

function checkChain(bundle: EvidenceBundle, add: (problem: Problem) => void): void {
  let previous = { seq: 0, hash: bundle.genesis };
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
}

function checkHead(bundle: EvidenceBundle, signed: Signed | null, add: (problem: Problem) => void): void {
  const last = bundle.records.at(-1);
  const end = last ? { seq: last.seq, hash: last.hash } : { seq: 0, hash: bundle.genesis };
  const head = signed?.claims.head ?? bundle.head;
  if (end.seq !== head.seq || end.hash !== head.hash) {
    add({
      code: "head_mismatch",
      ...(last ? { record: where(last, bundle.records.length - 1) } : {}),
      message: `The chain ends at seq ${end.seq} but its ${signed ? "signed " : ""}head is seq ${head.seq}: ${
        end.seq < head.seq && bundle.records.every((r) => r.seq <= end.seq)
          ? "records were removed from the end"
          : "the last record is not the one the head names"
      }.`,
    });
  }
}

function checkPolicies(bundle: EvidenceBundle, add: (problem: Problem) => void): number {
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
  return Object.keys(bundle.policies).length;
}

function checkRuns(records: readonly BundleRecord[], add: (problem: Problem) => void): VerifyReport["runs"] {
  const starts = new Map<number, BundleRecord>();
  const finished = new Set<string>();
  for (const [index, record] of records.entries()) {
    if (record.kind === "run.started") starts.set(record.seq, record);
    if (record.kind !== "run.finished") continue;
    finished.add(record.runId);
    const start = record.startSeq === undefined ? undefined : starts.get(record.startSeq);
    if (!start || start.runId !== record.runId) {
      add({
        code: "finish_unmatched",
        record: where(record, index),
        message: `Record seq ${record.seq} finishes run ${record.runId}, but seq ${record.startSeq ?? "?"} before it is not that run's start.`,
      });
    }
  }
  const total = starts.size;
  return { total, open: [...starts.values()].filter((start) => !finished.has(start.runId)).length };
}
