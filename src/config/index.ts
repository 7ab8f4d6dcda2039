export { type Config, type Planner, platformSecrets, readConfig, type SigningJwk } from "./config.ts";
