export { IdentifierSchema, type Identity } from "./identity.ts";
export { bearerToken, type VerifyResult, verifyToken } from "./verify-token.ts";
