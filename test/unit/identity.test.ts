import { env } from "cloudflare:workers";
import { base64url, exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { readConfig } from "../../src/config/index.ts";
import { bearerToken, verifyToken } from "../../src/identity/index.ts";
import { AUDIENCE, ISSUER, signToken } from "./tokens.ts";

const auth = () => readConfig(env).auth;
const devPublicJwk = () => {
  const { keys } = auth();
  if (keys.kind !== "dev") throw new Error("the unit tests run with the dev key");
  return keys.jwk;
};
const now = () => Math.floor(Date.now() / 1000);
/** The URL of the resource the tokens are presented at (RFC 8707). */
const RESOURCE = "http://localhost/mcp";

describe("identity", () => {
  it("maps a valid token to actor, tenant, session and roles", async () => {
    const result = await verifyToken(await signToken({ sub: "alice", tenant: "acme", sid: "s-42", roles: ["auditor"] }), auth(), RESOURCE);
    expect(result).toMatchObject({ ok: true, identity: { actor: "alice", tenant: "acme", session: "s-42", roles: ["auditor"] } });
  });

  it("remembers a verified token only for the verifier that checked it", async () => {
    const token = await signToken({ sub: "carol", tenant: "acme", sid: "s-cache" });
    expect((await verifyToken(token, auth(), RESOURCE)).ok).toBe(true);
    // the same token again, for a verifier that expects another audience: checked afresh, refused
    const other = { ...auth(), audience: ["another-audience"] };
    expect(await verifyToken(token, other, RESOURCE)).toMatchObject({
      ok: false,
      error: { code: "invalid_token", message: expect.stringMatching(/audience/) },
    });
    expect(await verifyToken(token, auth(), RESOURCE)).toMatchObject({ ok: true, identity: { actor: "carol", session: "s-cache" } });
  });

  it("takes a token issued for the URL of the resource it is presented at (RFC 8707), and no other resource's", async () => {
    const token = await signToken({ sub: "dave", tenant: "acme", sid: "s-aud", aud: RESOURCE });
    expect(await verifyToken(token, auth(), RESOURCE)).toMatchObject({ ok: true, identity: { actor: "dave" } });
    // the verified token is remembered with its audience: presented at another resource, refused even from the cache
    expect(await verifyToken(token, auth(), "http://localhost")).toMatchObject({
      ok: false,
      error: { code: "invalid_token", message: expect.stringMatching(/audience/) },
    });
    const elsewhere = await signToken({ sub: "dave", tenant: "acme", sid: "s-aud", aud: "https://other.example/mcp" });
    expect(await verifyToken(elsewhere, auth(), RESOURCE)).toMatchObject({ ok: false, error: { code: "invalid_token" } });
  });

  it("accepts roles as a space-separated string (OAuth scope style)", async () => {
    const result = await verifyToken(await signToken({ roles: "auditor approver" }), auth(), RESOURCE);
    expect(result).toMatchObject({ ok: true, identity: { roles: ["auditor", "approver"] } });
  });

  it.each([
    ["", null],
    ["Bearer abc.def.ghi", "abc.def.ghi"],
    ["bearer   abc.def.ghi  ", "abc.def.ghi"],
  ])("reads the bearer token from %j", (header, token) => {
    expect(bearerToken(header === "" ? null : header)).toEqual({ ok: true, token });
  });

  it.each(["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Token abc"])("fails closed on the Authorization header %j", (header) => {
    const result = bearerToken(header);
    expect(result.ok).toBe(false);
  });
});

describe("hardening", () => {
  const unsigned = (claims: object) => `${base64url.encode(JSON.stringify({ alg: "none", typ: "JWT" }))}.${base64url.encode(JSON.stringify(claims))}.`;

  it.each<[string, () => Promise<string>, RegExp]>([
    ["an expired token", () => signToken({ exp: now() - 120, iat: now() - 3600 }), /expired/],
    ["a token not valid yet", () => signToken({ nbf: now() + 600 }), /not valid yet/],
    ["a token issued an hour in the future", () => signToken({ iat: now() + 3600, exp: now() + 7200 }), /issued in the future/],
    ["a token for another audience", () => signToken({ aud: "someone-else" }), /audience/],
    ["a token from another issuer", () => signToken({ iss: "https://evil.example" }), /issuer/],
    ["a token without sid", () => signToken({ sid: undefined }), /"sid"/],
    ["a token without tenant", () => signToken({ tenant: undefined }), /"tenant"/],
    ["a token without sub", () => signToken({ sub: undefined }), /"sub"/],
    ["a token without exp", () => signToken({ exp: undefined }), /"exp"/],
    ["a tenant with unsafe characters", () => signToken({ tenant: "acme/../other" }), /"tenant" claim is invalid/],
    ["a session that is not a string", () => signToken({ sid: 42 }), /"sid" claim is invalid/],
    ["roles that are not strings", () => signToken({ roles: [1, 2] }), /"roles" claim is invalid/],
    [
      "an unsigned token (alg none)",
      async () => unsigned({ iss: ISSUER, aud: AUDIENCE, sub: "a", tenant: "t", sid: "s", exp: now() + 60 }),
      /algorithm|malformed/,
    ],
    [
      "an HS256 token keyed with the public key (algorithm confusion)",
      async () => {
        const publicJwk = devPublicJwk();
        const secret = new TextEncoder().encode(JSON.stringify(publicJwk));
        return await new SignJWT({ tenant: "acme", sid: "s" })
          .setProtectedHeader({ alg: "HS256", kid: publicJwk.kid })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setSubject("mallory")
          .setExpirationTime("5m")
          .sign(secret);
      },
      /algorithm/,
    ],
    [
      "a token signed by another key with the right kid",
      async () => {
        const { privateKey } = await generateKeyPair("ES256");
        const publicJwk = devPublicJwk();
        return await new SignJWT({ tenant: "acme", sid: "s" })
          .setProtectedHeader({ alg: "ES256", kid: publicJwk.kid })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setSubject("mallory")
          .setExpirationTime("5m")
          .sign(privateKey);
      },
      /signature/,
    ],
    [
      "a token signed by an unknown key",
      async () => {
        const { privateKey, publicKey } = await generateKeyPair("ES256");
        const kid = (await exportJWK(publicKey)).x ?? "other";
        return await new SignJWT({ tenant: "acme", sid: "s" })
          .setProtectedHeader({ alg: "ES256", kid })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setSubject("mallory")
          .setExpirationTime("5m")
          .sign(privateKey);
      },
      /key this server does not know/,
    ],
    ["a payload edited after signing", async () => editPayload(await signToken(), { tenant: "other" }), /signature/],
    ["garbage", async () => "not-a-jwt", /malformed/],
  ])("rejects %s as invalid_token", async (_case, makeToken, message) => {
    const result = await verifyToken(await makeToken(), auth(), RESOURCE);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("invalid_token");
    expect(result.error.status).toBe(401);
    expect(result.error.message).toMatch(message);
  });
});

function editPayload(token: string, changes: object): string {
  const [header, payload, signature] = token.split(".");
  const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload ?? "")));
  return `${header}.${base64url.encode(JSON.stringify({ ...claims, ...changes }))}.${signature}`;
}
