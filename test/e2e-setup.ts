// The e2e project's global setup: the shared server (test/helpers/shared-server.ts), started
// once before the first file and stopped after the last.
import type { TestProject } from "vitest/node";
import { startLocalServer } from "./helpers/local-server.ts";

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const server = await startLocalServer();
  project.provide("sharedServer", { url: server.url, stateDir: server.stateDir, pid: server.pid });
  return async () => await server.stop();
}
