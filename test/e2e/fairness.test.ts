// The budget, not the isolate, limits a tenant: a tenant with eight slots runs eight calls at
// once while another tenant is active, where the Worker once took calls in turns per isolate
// (one call of a tenant at a time while others were active).
import { createServer } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { rawToolCall } from "../helpers/mcp-http.ts";

const WAIT_MS = 1_000;
let server: LocalServer;
let upstream: { port: number; spans: Array<{ from: number; to: number }>; close: () => Promise<void> };

/** An upstream that answers each request after WAIT_MS and keeps when each was in flight. */
async function slowUpstream(): Promise<typeof upstream> {
  const spans: Array<{ from: number; to: number }> = [];
  const http = createServer((request, response) => {
    const from = Date.now();
    setTimeout(() => {
      spans.push({ from, to: Date.now() });
      response.writeHead(200, { "content-type": "text/plain" }).end("slow");
    }, WAIT_MS);
    request.resume();
  });
  await new Promise<void>((resolve) => http.listen(0, "127.0.0.1", resolve));
  const address = http.address();
  if (!address || typeof address !== "object") throw new Error("no port");
  return { port: address.port, spans, close: () => new Promise((resolve) => http.close(() => resolve())) };
}

beforeAll(async () => {
  upstream = await slowUpstream();
  const contract = readOnlyContract("slow-probe", "slow_probe", {
    limits: { wallMs: 5_000, subRequests: 5 },
    egress: [{ host: "127.0.0.1", protocol: "http", ports: [upstream.port], methods: ["GET"], paths: ["/slow"] }],
  });
  const tenant = {
    phases: [1],
    budget: { interactive: { maxInFlight: 8, queueMax: 0 }, batch: { maxInFlight: 1, queueMax: 0 }, downgradeInFlight: 0 },
    teams: {
      all: {
        members: ["*"],
        grants: [
          { contract: "slow-probe", maxDataClass: "internal" },
          { contract: "read-only-analysis", maxDataClass: "internal" },
        ],
      },
    },
  };
  server = await startLocalServer({ env: dataDirs({ "slow-probe": contract }, { tenants: { acme: tenant, globex: tenant } }) });
});
afterAll(async () => {
  await server?.stop();
  await upstream?.close();
});

describe("fairness", () => {
  it("runs all eight of a tenant's calls at once, each waiting on an upstream, while another tenant is active", async () => {
    const globex = await server.token({ tenant: "globex", actor: "gina", session: "s-active" });
    let stop = false;
    let theirs = 0;
    const active = (async () => {
      for (let id = 1; !stop; id++) {
        await rawToolCall(server.mcpUrl, globex, "analyze_readonly", { code: "export default () => 1" }, id);
        theirs++;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    // globex is active before acme starts
    await until("globex's first calls", async () => (theirs >= 2 ? true : undefined));

    const acme = await server.token({ tenant: "acme", actor: "alice", session: "s-eight" });
    const code = `export default async () => (await fetch("http://127.0.0.1:${upstream.port}/slow")).text()`;
    const startedAt = Date.now();
    const answers = await Promise.all(
      Array.from({ length: 8 }, (_, i) => rawToolCall<{ termination: string; result: unknown }>(server.mcpUrl, acme, "slow_probe", { code }, i + 1)),
    );
    const tookMs = Date.now() - startedAt;
    stop = true;
    await active;

    expect(answers.map((a) => a.termination)).toEqual(Array(8).fill("completed"));
    expect(theirs).toBeGreaterThan(0);
    // all eight were at the upstream at the same time: the last one arrived before the first one was answered
    expect(upstream.spans).toHaveLength(8);
    const lastArrival = Math.max(...upstream.spans.map((s) => s.from));
    const firstAnswer = Math.min(...upstream.spans.map((s) => s.to));
    expect(lastArrival).toBeLessThan(firstAnswer);
    console.log(`eight calls of 1 s each beside an active tenant took ${tookMs} ms; the upstream had all eight in flight at once`);
  });
});
