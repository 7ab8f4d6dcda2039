export { type Config, type Jwk, type Planner, readConfig, readTurnstileLimits, type SigningJwk } from "./config.ts";
