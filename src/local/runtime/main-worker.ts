// The main runtime's entry under `npm start`: the Worker exactly as it deploys, plus the
// sandbox router its SANDBOX_HOST binding points to (local only; never in the deployed bundle).
export * from "../../index.ts";
export { default } from "../../index.ts";
export { SandboxRouter } from "./sandbox-router.ts";
