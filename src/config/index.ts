export { type Config, type OAuthConfig, type Planner, platformSecrets, readConfig, type SigningJwk } from "./config.ts";
