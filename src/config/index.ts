export { type Config, type Jwk, type Planner, platformSecrets, readConfig, readTurnstileLimits, type SigningJwk } from "./config.ts";
