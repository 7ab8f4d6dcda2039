// The exported form of a session's evidence: every record of its hash chain, the policy
// snapshots they point at, and a JWS by the evidence key over the chain's head. A bundle
// is self-contained: `verifyBundle` (and `npm run verify`) checks it with no server.
// zod/mini: the same checks as zod, but tree-shakable, so the viewer page ships a small verifier.
import * as z from "zod/mini";

export const BUNDLE_FORMAT = "agent-exec/evidence-bundle@1";
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

/** What the signature asserts; the verifier also checks that the bundle says the same. */
export const ExportClaimsSchema = z.object({
  iss: z.literal(EXPORT_ISSUER),
  tenant: z.string(),
  session: z.string(),
  genesis: Sha256,
  head: Head,
  /** How many records the chain holds up to the head. */
  records: z.int().check(z.minimum(0)),
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
  format: z.literal(BUNDLE_FORMAT),
  tenant: z.string(),
  session: z.string(),
  exportedAt: z.string(),
  genesis: Sha256,
  head: Head,
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
