// Two projects: `unit` runs inside workerd with the real bindings (Worker Loader,
// Durable Objects); `e2e` runs in Node and drives the real server with real MCP clients.
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";
import { defineConfig } from "vitest/config";

// A throwaway identity key per test run: its public half is the Worker's dev key,
// its private half signs the tokens the unit tests send.
const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
const publicJwk = await exportJWK(publicKey);
const kid = await calculateJwkThumbprint(publicJwk);

export default defineConfig({
  test: {
    projects: [
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: { bindings: { AUTH_DEV_PUBLIC_JWK: JSON.stringify({ ...publicJwk, kid, alg: "ES256" }) } },
          }),
        ],
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          provide: { devPrivateJwk: { ...(await exportJWK(privateKey)), kid, alg: "ES256" } },
        },
      },
      {
        test: {
          name: "e2e",
          include: ["test/e2e/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});
