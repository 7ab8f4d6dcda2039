export { type Config, type Jwk, type Planner, platformSecrets, readConfig, type SigningJwk } from "./config.ts";
