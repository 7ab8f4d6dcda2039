// `npm run token -- --tenant acme --actor alice [--role auditor] [--session S] [--ttl 1h]`
// prints a bearer JWT signed with the local development key. Local use only.
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { importJWK, SignJWT } from "jose";
import { IdentifierSchema } from "../identity/identity.ts";
import { ensureDevKey, type KeyPair, ROOT } from "./dev-keys.ts";

export type TokenRequest = {
  key: KeyPair;
  issuer: string;
  audience: string;
  tenant: string;
  actor: string;
  roles?: string[];
  session?: string;
  ttlSeconds?: number;
};

export function newSessionId(): string {
  return `s-${randomBytes(9).toString("base64url")}`;
}

export async function mintToken(request: TokenRequest): Promise<{ token: string; session: string; expiresAt: number }> {
  const session = request.session ?? newSessionId();
  const ttl = request.ttlSeconds ?? 3600;
  const now = Math.floor(Date.now() / 1000);
  const privateKey = await importJWK(request.key.privateJwk, request.key.privateJwk.alg);
  const token = await new SignJWT({ tenant: request.tenant, sid: session, roles: request.roles ?? [] })
    .setProtectedHeader({ alg: request.key.privateJwk.alg, kid: request.key.privateJwk.kid, typ: "JWT" })
    .setIssuer(request.issuer)
    .setAudience(request.audience)
    .setSubject(request.actor)
    .setIssuedAt(now)
    .setExpirationTime(now + ttl)
    .setJti(randomBytes(12).toString("base64url"))
    .sign(privateKey);
  return { token, session, expiresAt: now + ttl };
}

export function parseTtl(text: string): number {
  const match = /^(\d+)(s|m|h|d)?$/.exec(text.trim());
  if (!match?.[1]) throw new Error(`--ttl must look like 90s, 15m, 1h or 2d (got "${text}")`);
  const unit = { s: 1, m: 60, h: 3600, d: 86400 }[match[2] ?? "s"] ?? 1;
  const seconds = Number(match[1]) * unit;
  if (seconds < 1 || seconds > 30 * 86400) throw new Error("--ttl must be between 1s and 30d");
  return seconds;
}

/** Issuer and audience come from wrangler.toml [vars], the same values the Worker verifies against. */
export async function localAuthSettings(): Promise<{ issuer: string; audience: string }> {
  const { experimental_readRawConfig } = await import("wrangler");
  const vars = (experimental_readRawConfig({ config: `${ROOT}/wrangler.toml` }).rawConfig.vars ?? {}) as Record<string, unknown>;
  const issuer = vars.AUTH_ISSUER;
  const audience = vars.AUTH_AUDIENCE;
  if (typeof issuer !== "string" || typeof audience !== "string") throw new Error("wrangler.toml [vars] must set AUTH_ISSUER and AUTH_AUDIENCE");
  return { issuer, audience };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      tenant: { type: "string" },
      actor: { type: "string" },
      role: { type: "string", multiple: true },
      session: { type: "string" },
      ttl: { type: "string", default: "1h" },
      json: { type: "boolean", default: false },
    },
    strict: true,
  });
  if (!values.tenant || !values.actor) {
    throw new Error("usage: npm run token -- --tenant <tenant> --actor <actor> [--role <role>]... [--session <sid>] [--ttl 1h] [--json]");
  }
  for (const [flag, value] of [
    ["--tenant", values.tenant],
    ["--actor", values.actor],
    ["--session", values.session],
  ] as const) {
    if (value !== undefined && !IdentifierSchema.safeParse(value).success) throw new Error(`${flag} must be 1-128 characters: letters, digits and . _ : @ -`);
  }
  const minted = await mintToken({
    key: await ensureDevKey(),
    ...(await localAuthSettings()),
    tenant: values.tenant,
    actor: values.actor,
    roles: values.role ?? [],
    ...(values.session ? { session: values.session } : {}),
    ttlSeconds: parseTtl(values.ttl),
  });
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ ...minted, tenant: values.tenant, actor: values.actor, roles: values.role ?? [] })}\n`);
  } else {
    process.stdout.write(`${minted.token}\n`);
    process.stderr.write(
      `tenant=${values.tenant} actor=${values.actor} session=${minted.session} expires=${new Date(minted.expiresAt * 1000).toISOString()}\n`,
    );
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(2);
  });
}
