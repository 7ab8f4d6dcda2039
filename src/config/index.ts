export { type Config, type Jwk, type Planner, readConfig, type SigningJwk } from "./config.ts";
