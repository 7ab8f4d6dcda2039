// The exported form of a session's evidence: a range of its hash chain (the whole of it
// for a small session), the policy snapshots those records point at, and a JWS by the
// evidence key over the range: the hash it links to, its last record, the session's head.
// A bundle is self-contained: `verifyBundle` (and `npm run verify`) checks it with no
// server, and a series of range bundles as one chain (`verifySeries`).
// zod/mini: the same checks as zod, but tree-shakable, so the viewer page ships a small verifier.
import * as z from "zod/mini";

export const BUNDLE_FORMAT = "agent-exec/evidence-bundle@2";
/** The first format: always the whole session, no range (still verified). */
export const BUNDLE_FORMAT_V1 = "agent-exec/evidence-bundle@1";
/** The JWS `typ` of a bundle's signature; no other key use of the platform produces it. */
export const EXPORT_TYPE = "agent-exec-evidence+jwt";
export const EXPORT_ISSUER = "agent-exec/evidence";

/**
 * Stands for "no policy snapshot could be computed" (the pipeline crashed first): the
 * SHA-256 of the empty string. A bundle carries no snapshot for it.
 */
export const NO_POLICY_HASH = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

const Sha256 = z.string().check(z.regex(/^[0-9a-f]{64}$/));
const Head = z.object({ seq: z.int().check(z.minimum(0)), hash: Sha256 });
/** Which records a bundle carries, by sequence number, both ends included. */
const Range = z.object({ from: z.int().check(z.minimum(1)), to: z.int().check(z.minimum(1)) });

/** What the signature asserts; the verifier also checks that the bundle says the same. */
export const ExportClaimsSchema = z.object({
  iss: z.literal(EXPORT_ISSUER),
  tenant: z.string(),
  session: z.string(),
  genesis: Sha256,
  head: Head,
  /** How many records the bundle carries (format 1: the chain up to the head). */
  records: z.int().check(z.minimum(0)),
  /** Format 2: the range carried, what its first record links to (seq 0: the genesis) and its last record. */
  range: z.optional(Range),
  prev: z.optional(Head),
  last: z.optional(Head),
  /** The policy snapshots the records point at, by hash. */
  policies: z.array(Sha256),
  iat: z.number(),
});
export type ExportClaims = z.infer<typeof ExportClaimsSchema>;

/**
 * The fields of a record the verifier reads; the rest is covered by its hash, not by a
 * schema, so a bundle from a newer ledger with more fields still verifies.
 */
export const BundleRecordSchema = z.looseObject({
  seq: z.int(),
  at: z.string(),
  prevHash: z.string(),
  hash: z.string(),
  kind: z.string(),
  runId: z.string(),
  tenant: z.string(),
  session: z.string(),
  policyHash: z.string(),
  startSeq: z.optional(z.int()),
});
export type BundleRecord = z.infer<typeof BundleRecordSchema>;

const JwksSchema = z.object({ keys: z.array(z.looseObject({ kty: z.string(), kid: z.optional(z.string()) })) });
export type Jwks = z.infer<typeof JwksSchema>;

export const EvidenceBundleSchema = z.object({
  format: z.union([z.literal(BUNDLE_FORMAT), z.literal(BUNDLE_FORMAT_V1)]),
  tenant: z.string(),
  session: z.string(),
  exportedAt: z.string(),
  genesis: Sha256,
  /** The session's head when it was exported (format 2: records past the range's end may exist). */
  head: Head,
  range: z.optional(Range),
  prev: z.optional(Head),
  last: z.optional(Head),
  records: z.array(BundleRecordSchema),
  /** Snapshot by hash; SHA-256 of a snapshot's RFC 8785 canonical JSON is its hash. */
  policies: z.record(z.string(), z.unknown()),
  /** Compact JWS (typ agent-exec-evidence+jwt) carrying ExportClaims. */
  signature: z.string(),
  /** The keys the server published when it exported: convenient, but only as trusted as the bundle. */
  keys: JwksSchema,
});
export type EvidenceBundle = z.infer<typeof EvidenceBundleSchema>;
export { JwksSchema };
