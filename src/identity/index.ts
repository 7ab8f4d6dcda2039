export { IdentifierSchema, type Identity } from "./identity.ts";
export { bearerToken, verifyToken } from "./verify-token.ts";
