// One local server for the e2e files that need no server of their own (no special data, no
// restart, no kill): started once by the e2e project's global setup (test/e2e-setup.ts),
// shared by every such file. Each file uses sessions of its own, so they do not see each
// other's runs; a file that needs a fresh server, other data or to stop it starts its own.
import { inject } from "vitest";
import { ensureDevKey } from "../../src/local/dev-keys.ts";
import { mintToken } from "../../src/local/mint-token.ts";
import { AUDIENCE, ISSUER, type LocalServer } from "./local-server.ts";

declare module "vitest" {
  export interface ProvidedContext {
    sharedServer: { url: string; stateDir: string; pid: number };
    // what vitest.config.mts provides the unit project (typed there, in test/unit/tasks.ts and tokens.ts)
    devPrivateJwk: unknown;
    taskSigningJwk: unknown;
    evidenceSigningJwk: unknown;
    plannerJwks: unknown;
  }
}

export async function sharedServer(): Promise<LocalServer> {
  const { url, stateDir, pid } = inject("sharedServer");
  const key = await ensureDevKey(stateDir);
  const refuse = async () => {
    throw new Error("the shared server is not this file's to stop: start one with startLocalServer()");
  };
  return {
    url,
    pid,
    mcpUrl: new URL(`${url}/mcp`),
    stateDir,
    output: () => "",
    token: async (request) => (await mintToken({ key, issuer: ISSUER, audience: AUDIENCE, ...request })).token,
    // the global setup stops it after the last file
    stop: async () => {},
    kill: refuse,
  };
}
