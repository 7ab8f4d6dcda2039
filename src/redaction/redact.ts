// Redaction: built-in detectors for secrets (bearer tokens and JWTs, API keys of common
// providers, AWS secret keys, webhook URLs, PEM private keys, passwords in URLs, values
// assigned to secret-like names, credentials in query strings), the values of the secrets the platform
// itself holds (what the egress gateway injects, signing keys), and a contract's own rules.
// Applied before anything reaches evidence, server logs or the approval page; evidence keeps
// the SHA-256 of the unredacted value beside the redacted one, so an auditor holding the
// original can prove it matches.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

export type Detector = { name: string; pattern: RegExp; keep?: (match: string, ...groups: string[]) => string };

const mark = (name: string) => `[REDACTED:${name}]`;

/** Names whose assigned value is a secret: `*secret*`, `*password*`, `*api_key*`, `*token*` and their kin, in any case. */
const SECRET_NAME = String.raw`[A-Za-z0-9_.-]{0,40}(?:secret|passw(?:or)?d|pwd|api[_-]?key|access[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|id[_-]?token|private[_-]?key|credentials?)[A-Za-z0-9_.-]{0,40}`;
/** `name = `, `name: `, `"name": `, `name=` (a query parameter), quotes escaped too (JSON in a string): what may stand between a name and its value. */
const ASSIGN = String.raw`\\?["']?\s*[:=]\s*`;
const keepFirst =
  (name: string) =>
  (_m: string, prefix = "") =>
    `${prefix}${mark(name)}`;

/** Longest first where they overlap (a JWT after "Bearer" is one bearer token). */
export const DETECTORS: readonly Detector[] = [
  // a body is bounded (an 8192-bit RSA key is under 7 kB) and holds no other BEGIN: unbounded, BEGIN lines without an END were quadratic
  {
    name: "pem_private_key",
    pattern: /-----BEGIN (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----(?:(?!-----BEGIN )[\s\S]){0,12000}?-----END (?:[A-Z0-9]+ ){0,4}PRIVATE KEY-----/g,
  },
  { name: "bearer_token", pattern: /(?<![A-Za-z])(Bearer)\s+[A-Za-z0-9._~+/-]{16,}=*/gi, keep: (_m, scheme = "Bearer") => `${scheme} ${mark("bearer_token")}` },
  { name: "jwt", pattern: /\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}/g },
  // the scheme's length is bounded: unbounded, "a.a.a.…" made this quadratic (400 kB took 100 s)
  {
    name: "url_password",
    pattern: /\b([a-z][a-z0-9+.-]{0,31}:\/\/[^\s:/@]{1,256}:)([^\s@/]{1,256})@/gi,
    keep: (_m, prefix = "") => `${prefix}${mark("url_password")}@`,
  },
  { name: "aws_access_key", pattern: /\b(?:AKIA|ASIA)[0-9A-Z]{16}\b/g },
  {
    // 40 characters of base64 after its name (aws_secret_access_key=, SecretAccessKey:, …): alone it is indistinguishable from a hash
    name: "aws_secret_key",
    pattern: /\b((?:aws_?)?secret_?access_?key\\?["']?\s*[:=]\s*\\?["']?)[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])/gi,
    keep: keepFirst("aws_secret_key"),
  },
  // webhook URLs are their own credential; the host is optional, as an egress record keeps only the path
  { name: "slack_webhook", pattern: /(?:\bhooks\.slack\.com)?\/(?:services|workflows)\/T[A-Z0-9]{6,12}\/[A-Z0-9]{6,12}\/[A-Za-z0-9]{20,}/g },
  { name: "discord_webhook", pattern: /(?:\bdiscord(?:app)?\.com)?\/api\/webhooks\/\d{15,20}\/[A-Za-z0-9_-]{40,}/g },
  { name: "telegram_bot_token", pattern: /(?<!\d)\d{6,12}:AA[A-Za-z0-9_-]{30,}/g },
  { name: "github_token", pattern: /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/g },
  { name: "slack_token", pattern: /\bxox[abposr]-[A-Za-z0-9-]{10,}/g },
  { name: "stripe_key", pattern: /\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}\b/g },
  { name: "google_api_key", pattern: /\bAIza[0-9A-Za-z_-]{35}\b/g },
  { name: "anthropic_key", pattern: /\bsk-ant-[A-Za-z0-9_-]{20,}/g },
  { name: "openai_key", pattern: /\bsk-(?:proj-|svcacct-)?[A-Za-z0-9_-]{20,}/g },
  {
    // a quoted value after a secret's name: everything up to the closing quote (spaces included)
    name: "secret_assignment",
    pattern: new RegExp(String.raw`\b(${SECRET_NAME}${ASSIGN}\\?(["']))(?!\[REDACTED)[^"'\\\n]{3,}(?=\\?\2)`, "gi"),
    keep: keepFirst("secret_assignment"),
  },
  {
    // a bare value after a secret's name (env files, YAML, query strings): up to a space, quote or separator
    name: "secret_assignment",
    pattern: new RegExp(String.raw`\b(${SECRET_NAME}${ASSIGN})(?!\[REDACTED)(?!\\?["'])[^\s"'\\&,;<>{}()\[\]]{3,}`, "gi"),
    keep: keepFirst("secret_assignment"),
  },
  {
    // credentials that travel as query parameters: ?token=, &sig= (SAS), &key=, X-Amz-Signature=, …
    name: "url_query_secret",
    pattern:
      /([?&;](?:token|key|sig|signature|code|auth|x-amz-signature|x-amz-credential|x-amz-security-token|x-goog-signature|x-goog-credential)=)(?!\[REDACTED)[^&#\s"'<>]{6,}/gi,
    keep: keepFirst("url_query_secret"),
  },
];

export type Redactor = {
  /** The text with every secret replaced by [REDACTED:<detector>], and what was found. */
  text(value: string): { text: string; found: string[] };
  /** Same for a JSON value (strings inside it), returning the redacted value. */
  json(value: unknown): { value: unknown; found: string[] };
};

/** Secrets shorter than this are not matched by value (too likely to hit ordinary text). */
const MIN_SECRET_LENGTH = 8;

export function redactor(options: { secrets?: readonly string[]; rules?: readonly { name: string; pattern?: string; path?: string }[] } = {}): Redactor {
  const secrets = [...new Set((options.secrets ?? []).filter((s) => s.length >= MIN_SECRET_LENGTH))].sort((a, b) => b.length - a.length);
  const rules: Detector[] = (options.rules ?? []).flatMap((rule) => (rule.pattern ? [{ name: rule.name, pattern: new RegExp(rule.pattern, "g") }] : []));
  const paths = (options.rules ?? []).flatMap((rule) => (rule.path ? [{ name: rule.name, steps: rule.path.split(".").slice(1) }] : []));
  const pathHit = (at: readonly string[]) => paths.find((p) => p.steps.length === at.length && p.steps.every((step, i) => step === "*" || step === at[i]));
  const text = (value: string) => {
    const found: string[] = [];
    let out = value;
    for (const secret of secrets) {
      if (out.includes(secret)) {
        out = out.split(secret).join(mark("platform_secret"));
        found.push("platform_secret");
      }
    }
    for (const detector of [...DETECTORS, ...rules]) {
      detector.pattern.lastIndex = 0;
      if (!detector.pattern.test(out)) continue;
      detector.pattern.lastIndex = 0;
      out = out.replace(detector.pattern, (match: string, ...groups: unknown[]) =>
        detector.keep ? detector.keep(match, ...groups.filter((g): g is string => typeof g === "string")) : mark(detector.name),
      );
      found.push(detector.name);
    }
    return { text: out, found };
  };
  const json = (value: unknown): { value: unknown; found: string[] } => {
    const found: string[] = [];
    const walk = (v: unknown, at: string[] = []): unknown => {
      const hit = at.length > 0 ? pathHit(at) : undefined;
      if (hit) {
        found.push(hit.name);
        return mark(hit.name);
      }
      if (typeof v === "string") {
        const r = text(v);
        found.push(...r.found);
        return r.text;
      }
      if (Array.isArray(v)) return v.map((inner, i) => walk(inner, [...at, String(i)]));
      if (v && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, inner]) => [k, walk(inner, [...at, k])]));
      return v;
    };
    return { value: walk(value), found: [...new Set(found)] };
  };
  return { text, json };
}

/**
 * A redacted string for evidence: the redacted text, and (only when something was redacted)
 * the SHA-256 of the original and the detectors that fired.
 */
export function redactedField(redact: Redactor, value: string): { text: string; sha256?: string; redacted?: string[] } {
  const result = redact.text(value);
  if (result.found.length === 0) return { text: value };
  return { text: result.text, sha256: bytesToHex(sha256(utf8ToBytes(value))), redacted: [...new Set(result.found)] };
}
