// The hash chain of a session's ledger. Every record carries the hash of the record
// before it (`prevHash`) and its own (`hash`): SHA-256 over the RFC 8785 canonical JSON
// of the record without its `hash`. The first record links to the session's genesis,
// a hash of the ledger format, tenant and session, so no record moves between sessions.
// Synchronous on purpose: the ledger computes a link and writes it in one step, with no
// await in between that would let another append read the same head.
import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";
import { canonicalJson } from "./digest.ts";

export const LEDGER_FORMAT = "agent-exec/ledger@1";

export function sha256HexSync(text: string): string {
  return bytesToHex(sha256(utf8ToBytes(text)));
}

/** What the first record of a session links to. */
export function genesisHash(tenant: string, session: string): string {
  return sha256HexSync(canonicalJson({ format: LEDGER_FORMAT, tenant, session }));
}

/** A record's own hash: everything it holds but that hash (its `prevHash` included). */
export function recordHash(record: Readonly<Record<string, unknown>>): string {
  const { hash: _own, ...linked } = record;
  return sha256HexSync(canonicalJson(linked));
}
