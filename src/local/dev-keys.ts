// The local development signing key for bearer tokens. Created on first use under
// the state folder (never committed); `npm start` hands its public half to the Worker.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";

export const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const DEV_ALGORITHM = "ES256";

/** Everything local lives here: keys and Durable Object storage. `STATE_DIR` overrides it. */
export function stateDir(): string {
  return resolve(process.env.STATE_DIR ?? join(ROOT, ".state"));
}

export type DevKey = { privateJwk: JWK; publicJwk: JWK };

export async function ensureDevKey(dir: string = stateDir()): Promise<DevKey> {
  const keysDir = join(dir, "keys");
  const file = join(keysDir, "identity-dev.jwk.json");
  const existing = readKey(file);
  if (existing) return existing;

  mkdirSync(keysDir, { recursive: true, mode: 0o700 });
  const { privateKey, publicKey } = await generateKeyPair(DEV_ALGORITHM, { extractable: true });
  const publicJwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicJwk);
  const key: DevKey = {
    privateJwk: { ...(await exportJWK(privateKey)), kid, alg: DEV_ALGORITHM, use: "sig" },
    publicJwk: { ...publicJwk, kid, alg: DEV_ALGORITHM, use: "sig" },
  };
  try {
    writeFileSync(file, `${JSON.stringify(key, null, 2)}\n`, { mode: 0o600, flag: "wx" });
  } catch (error) {
    // Another process created it first: use theirs, so every token verifies.
    const theirs = readKey(file);
    if (theirs) return theirs;
    throw error;
  }
  return key;
}

function readKey(file: string): DevKey | undefined {
  try {
    return JSON.parse(readFileSync(file, "utf8")) as DevKey;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`${file} is unreadable; delete it and a new development key will be created.`, { cause: error });
  }
}
