// Turns the Authorization header into an Identity, or an error. "No header" is
// not an error here: each route decides whether it needs a caller.
import type { Config } from "../config/index.ts";
import type { PlatformError } from "../errors/index.ts";
import { bearerToken, type Identity, verifyToken } from "../identity/index.ts";

export type Authentication = { ok: true; identity: Identity | undefined } | { ok: false; error: PlatformError };

export async function authenticate(request: Request, config: Config): Promise<Authentication> {
  const header = bearerToken(request.headers.get("authorization"));
  if (!header.ok) return header;
  if (header.token === null) return { ok: true, identity: undefined };
  const verified = await verifyToken(header.token, config.auth);
  return verified.ok ? { ok: true, identity: verified.identity } : verified;
}
