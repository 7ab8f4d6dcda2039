// Content digests for evidence: SHA-256 over UTF-8 text, and over RFC 8785
// canonical JSON so equal values hash equally whatever their key order.
import canonicalize from "canonicalize";

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** RFC 8785 (JCS) text of a JSON value; `undefined` canonicalises as `null`. */
export function canonicalJson(value: unknown): string {
  return canonicalize(value ?? null) ?? "null";
}

export function utf8Bytes(text: string): number {
  return new TextEncoder().encode(text).byteLength;
}
