// The runtime's gate: a signed task is admitted only if its signature, algorithm, type,
// issuer, audience and time window check out, its key may sign for the tenant, it is
// for the caller's tenant, session and contract, and the code and input about to run
// hash to what it says. The jti is consumed by the ledger with the run's start record.
// Expected failures are results, not throws.
import { decodeProtectedHeader, errors, jwtVerify } from "jose";
import type { z } from "zod";
import { canonicalJson, sha256Hex } from "../evidence/index.ts";
import { TASK_AUDIENCE, TASK_TYPE, type TaskRejection } from "./signed-task.ts";
import type { TaskTrust } from "./task-trust.ts";

declare const verified: unique symbol;

/** A task that passed admission. Only admitTask() makes one; only this can be run. */
export type VerifiedTask<Claims> = {
  readonly [verified]: true;
  claims: Claims;
  kid: string;
  code: string;
  input: unknown;
};

export type Expectation = {
  tenant: string;
  session: string;
  contractId: string;
  contractVersion: string;
  /** When set, the task's `sub` must be this actor (a planner signs for the submitter, not for anyone). */
  subject?: string;
};

export type Admission<Claims> =
  | { ok: true; task: VerifiedTask<Claims> }
  | { ok: false; reason: TaskRejection; detail: string; kid: string | null; jti: string | null; exp: number | null };

type CommonClaims = {
  iss: string;
  sub: string;
  tenant: string;
  sid: string;
  contract: { id: string; version?: string | undefined };
  code: string;
  input: string;
  iat: number;
  exp: number;
  jti: string;
};

export async function admitTask<Claims extends CommonClaims>(
  jws: string,
  payload: { code: string; input: unknown },
  expect: Expectation,
  trust: TaskTrust,
  schema: z.ZodType<Claims>,
  window: { maxSeconds: number; clockToleranceS: number },
): Promise<Admission<Claims>> {
  let kid: string | null = null;
  const refuse = (reason: TaskRejection, detail: string, claims?: { jti?: unknown; exp?: unknown }): Admission<Claims> => ({
    ok: false,
    reason,
    detail,
    kid,
    jti: typeof claims?.jti === "string" ? claims.jti.slice(0, 128) : null,
    exp: typeof claims?.exp === "number" ? claims.exp : null,
  });

  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jws);
  } catch {
    return refuse("task_malformed", "the task is not a compact JWS");
  }
  kid = typeof header.kid === "string" ? header.kid.slice(0, 256) : null;
  if (typeof header.alg !== "string" || !trust.algorithms.includes(header.alg)) {
    return refuse("algorithm_not_allowed", `algorithm ${String(header.alg)} is not accepted (allowed: ${trust.algorithms.join(", ")})`);
  }
  if (!trust.allows(header.kid, expect.tenant)) {
    const known = trust.issuerOf(header.kid) !== null;
    return refuse(
      known ? "planner_not_trusted" : "key_unknown",
      known ? `this planner may not plan for tenant ${expect.tenant}` : `no trusted key has kid ${String(header.kid)}`,
    );
  }

  const keySet = trust.keySetFor(header.kid);
  if (!keySet) return refuse("key_unknown", `no trusted key has kid ${String(header.kid)}`);
  let claims: Claims;
  try {
    const { payload: raw } = await jwtVerify(jws, keySet, {
      algorithms: trust.algorithms,
      typ: TASK_TYPE,
      audience: TASK_AUDIENCE,
      issuer: trust.issuers,
      clockTolerance: window.clockToleranceS,
      maxTokenAge: window.maxSeconds,
      requiredClaims: ["iat", "nbf", "exp", "jti", "sub", "tenant", "sid"],
    });
    const parsed = schema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return refuse("task_malformed", `claim ${issue?.path.join(".") || "(root)"}: ${issue?.message}`, raw);
    }
    claims = parsed.data;
  } catch (error) {
    return rejectionOf(error, refuse);
  }

  if (claims.iss !== trust.issuerOf(kid ?? undefined)) return refuse("issuer_untrusted", `key ${kid} may not sign as ${claims.iss}`, claims);
  if (claims.exp - claims.iat > window.maxSeconds)
    return refuse("window_too_long", `valid for ${claims.exp - claims.iat}s; at most ${window.maxSeconds}s`, claims);
  if (claims.tenant !== expect.tenant) return refuse("tenant_mismatch", `the task is for tenant ${claims.tenant}`, claims);
  if (claims.sid !== expect.session) return refuse("session_mismatch", `the task is for session ${claims.sid}`, claims);
  if (expect.subject !== undefined && claims.sub !== expect.subject)
    return refuse("subject_mismatch", `the task is for ${claims.sub}, not ${expect.subject}`, claims);
  if (claims.contract.id !== expect.contractId) return refuse("contract_mismatch", `the task is for contract ${claims.contract.id}`, claims);
  if (claims.contract.version !== undefined && claims.contract.version !== expect.contractVersion) {
    return refuse(
      "contract_mismatch",
      `the task is for version ${claims.contract.version} of ${claims.contract.id}; ${expect.contractVersion} is in force`,
      claims,
    );
  }
  // Hashes are recomputed here, from what is about to run, not taken from intake. The sandbox is
  // handed the canonical input itself, so what runs is exactly what was hashed (-0 and 0 alike).
  if ((await sha256Hex(payload.code)) !== claims.code) return refuse("code_mismatch", "the code does not hash to the task's code hash", claims);
  let canonical: string;
  try {
    canonical = canonicalJson(payload.input);
  } catch {
    return refuse("input_mismatch", "the input is not canonicalizable JSON", claims);
  }
  if ((await sha256Hex(canonical)) !== claims.input) return refuse("input_mismatch", "the input does not hash to the task's input hash", claims);

  return { ok: true, task: { claims, kid: kid ?? "", code: payload.code, input: JSON.parse(canonical) } as VerifiedTask<Claims> };
}

function rejectionOf<Claims>(
  error: unknown,
  refuse: (reason: TaskRejection, detail: string, claims?: { jti?: unknown; exp?: unknown }) => Admission<Claims>,
): Admission<Claims> {
  const claims = error instanceof errors.JWTClaimValidationFailed || error instanceof errors.JWTExpired ? error.payload : undefined;
  if (error instanceof errors.JWTExpired) {
    return error.claim === "iat" ? refuse("window_too_long", "issued too long ago", claims) : refuse("task_expired", "the task has expired", claims);
  }
  if (error instanceof errors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case "nbf":
        return refuse("task_not_yet_valid", "the task is not valid yet", claims);
      case "iat":
        return refuse("issued_in_future", "the task was issued in the future, beyond the allowed clock skew", claims);
      case "aud":
        return refuse("audience_mismatch", "the task is not addressed to the execution layer", claims);
      case "iss":
        return refuse("issuer_untrusted", "the task's issuer does not match its key", claims);
      default:
        return refuse("task_malformed", `claim ${error.claim}: ${error.reason}`, claims);
    }
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return refuse("signature_invalid", "the signature does not verify");
  if (error instanceof errors.JOSEAlgNotAllowed) return refuse("algorithm_not_allowed", "the algorithm is not accepted");
  if (error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys)
    return refuse("key_unknown", "no single trusted key matches");
  return refuse("task_malformed", error instanceof Error ? error.message.slice(0, 200) : "the task could not be verified");
}
