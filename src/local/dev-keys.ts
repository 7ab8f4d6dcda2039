// Local development keys, created on first use under the state folder (never
// committed): the bearer-token identity key, the policy layer's task-signing key, a
// local planner's key and the evidence-export key. `npm start` hands the Worker what it needs of each.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";

export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");

/** Everything local lives here: keys and Durable Object storage. `STATE_DIR` overrides it. */
export function stateDir(): string {
  return resolve(process.env.STATE_DIR ?? join(ROOT, ".state"));
}

export type KeyPair = { privateJwk: JWK & { kid: string; alg: string }; publicJwk: JWK & { kid: string; alg: string } };

/** The local keys and the algorithms they use. */
export const LOCAL_KEYS = {
  /** Signs bearer tokens (`npm run token`); the Worker verifies with its public half. */
  identity: { file: "identity-dev.jwk.json", alg: "ES256" },
  /** The policy layer's task-signing key (TASK_SIGNING_KEY). */
  taskSigning: { file: "task-signing.jwk.json", alg: "EdDSA" },
  /** A planner trusted for every tenant, locally only (TASK_PLANNERS). */
  planner: { file: "planner-dev.jwk.json", alg: "EdDSA" },
  /** Signs evidence exports (EVIDENCE_SIGNING_KEY). */
  evidenceSigning: { file: "evidence-signing.jwk.json", alg: "EdDSA" },
} as const;

export type LocalKeyName = keyof typeof LOCAL_KEYS;

/** A fresh key pair with a thumbprint kid. */
export async function newKeyPair(alg: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  return {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg, use: "sig" },
    publicJwk: { ...publicJwk, kid, alg, use: "sig" },
  };
}

/** Whether the state folder holds this key already (a start says which keys it created). */
export function hasKey(name: LocalKeyName, dir: string = stateDir()): boolean {
  return readKey(join(dir, "keys", LOCAL_KEYS[name].file)) !== undefined;
}

export async function ensureKey(name: LocalKeyName, dir: string = stateDir()): Promise<KeyPair> {
  const { file: fileName, alg } = LOCAL_KEYS[name];
  const keysDir = join(dir, "keys");
  const file = join(keysDir, fileName);
  const existing = readKey(file);
  if (existing) return existing;
  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const key = await newKeyPair(alg);
  try {
    writeFileSync(file, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    // Another process created it first: use theirs, so everything verifies.
    const theirs = readKey(file);
    if (theirs) return theirs;
    throw error;
  }
  return key;
}

/** The identity key that signs local bearer tokens. */
export function ensureDevKey(dir: string = stateDir()): Promise<KeyPair> {
  return ensureKey("identity", dir);
}

function readKey(file: string): KeyPair | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as KeyPair;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${file} is unreadable; delete it and a new development key will be created.`, { cause: error });
  }
}
