export { IdentifierSchema, type Identity, IdentitySchema } from "./identity.ts";
export { bearerToken, type VerifyResult, verifyToken } from "./verify-token.ts";
