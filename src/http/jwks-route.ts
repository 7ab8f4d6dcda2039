// GET /.well-known/jwks.json: the public keys that sign tasks (current and retired).
import type { JWK } from "jose";
import { jsonResponse } from "./error-response.ts";

export const JWKS_ROUTE = "/.well-known/jwks.json";

export function serveJwks(keys: readonly JWK[]): Response {
  return jsonResponse({ keys }, { headers: { "cache-control": "public, max-age=300" } });
}
