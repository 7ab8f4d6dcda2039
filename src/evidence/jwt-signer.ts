// Signs JWTs with one private JWK (EdDSA or ES256), named by its kid so verifiers can
// follow a rotation. The key is imported once; a key that fails to import is retried on
// the next call, never cached. The policy layer signs tasks with it, the export route
// evidence bundles; each with its own `typ`, so one signature never passes for the other.
import { importJWK, type JWK, type JWTPayload, SignJWT } from "jose";

export type SigningKey = JWK & { kid: string; alg: "EdDSA" | "ES256" };

export type JwtSigner<Claims extends JWTPayload> = { kid: string; sign(claims: Claims): Promise<string> };

export function jwtSigner<Claims extends JWTPayload>(jwk: SigningKey, typ: string): JwtSigner<Claims> {
  let key: ReturnType<typeof importJWK> | undefined;
  return {
    kid: jwk.kid,
    async sign(claims) {
      key ??= importJWK(jwk, jwk.alg);
      let imported: Awaited<ReturnType<typeof importJWK>>;
      try {
        imported = await key;
      } catch (error) {
        key = undefined;
        throw error;
      }
      return await new SignJWT({ ...claims }).setProtectedHeader({ alg: jwk.alg, kid: jwk.kid, typ }).sign(imported);
    },
  };
}
