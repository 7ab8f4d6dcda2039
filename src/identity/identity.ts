// Who is calling: the deterministic mapping actor (sub) -> tenant -> session (sid).
// A run id is added per call by the intent layer.
import { z } from "zod";
import { CredentialRecordSchema } from "../evidence/index.ts";

/** Safe in URLs, Durable Object names and log lines. */
export const IdentifierSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, "1-128 characters: letters, digits and . _ : @ -");

export const IdentitySchema = z.object({
  actor: IdentifierSchema,
  tenant: IdentifierSchema,
  session: IdentifierSchema,
  roles: z.array(z.string().min(1).max(64)).max(32),
  tokenId: z.string().max(256).optional(),
  expiresAt: z.int(),
  /** How the caller proved it (recorded in run.started). */
  credential: CredentialRecordSchema.optional(),
});
export type Identity = z.infer<typeof IdentitySchema>;
