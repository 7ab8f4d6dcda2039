// A grant's evidence session: named by the person at sign-in, kept in a namespace of theirs.
// (No import of the OAuth library here: tests compute the same name in Node.)
import { z } from "zod";

/** What a person may name their session (the label part of it; grantSession adds their namespace). */
export const SessionLabelSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/, "1-64 letters, digits and . _ @ -");

/**
 * The evidence session of a grant: the label the person chose, inside a namespace of their own
 * (a digest of tenant and actor), so nobody who signs in can write into, or read, a session
 * someone else's token names. `o-<12 hex>-<label>`.
 */
export async function grantSession(tenant: string, actor: string, label: string): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(`${tenant}\n${actor}`)));
  const hex = Array.from(digest.slice(0, 6), (byte) => byte.toString(16).padStart(2, "0")).join("");
  return `o-${hex}-${label}`;
}
