// Two projects: `unit` runs inside workerd with the real bindings (Worker Loader,
// Durable Objects); `e2e` runs in Node and drives the real server with real MCP clients.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";
import { newKeyPair } from "./src/local/dev-keys.ts";

// Throwaway keys per test run, as `npm start` makes them locally: the identity key
// (tokens), the policy layer's task-signing key, two planners (one for acme only) and
// the evidence-export key.
const identity = await newKeyPair("ES256");
const taskSigning = await newKeyPair("EdDSA");
const acmePlanner = await newKeyPair("EdDSA");
const anyPlanner = await newKeyPair("ES256");
const evidenceSigning = await newKeyPair("EdDSA");

/** The platform's metrics bearer (test/unit/metrics.test.ts reads the same constant). */
const METRICS_TOKEN = "unit-test-metrics-token-0123456789abcdef";

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                AUTH_DEV_PUBLIC_JWK: JSON.stringify(identity.publicJwk),
                TASK_SIGNING_KEY: JSON.stringify(taskSigning.privateJwk),
                EVIDENCE_SIGNING_KEY: JSON.stringify(evidenceSigning.privateJwk),
                METRICS_TOKEN: METRICS_TOKEN,
                TASK_PLANNERS: JSON.stringify([
                  { id: "acme-planner", tenants: ["acme"], jwk: acmePlanner.publicJwk },
                  { id: "any-planner", tenants: ["*"], jwk: anyPlanner.publicJwk },
                ]),
              },
            },
          }),
        ],
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          provide: {
            devPrivateJwk: identity.privateJwk,
            taskSigningJwk: taskSigning.privateJwk,
            evidenceSigningJwk: evidenceSigning.privateJwk,
            plannerJwks: { "acme-planner": acmePlanner.privateJwk, "any-planner": anyPlanner.privateJwk },
          },
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          globalSetup: ["test/e2e-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
