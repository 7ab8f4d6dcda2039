export { type Config, egressSecrets, type OAuthConfig, type Planner, platformSecrets, readConfig, type SigningJwk } from "./config.ts";
