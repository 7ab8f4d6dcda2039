export { AuthorizationServers, isIssuedToken, MCP_SCOPE, OAUTH_ROUTES } from "./authorization-server.ts";
export { type Directory, serveAuthorize, serveSignInCallback } from "./sign-in.ts";
