// `npm run bench`: p50/p95/p99 of a trivial tool call end to end over MCP, beside the
// same code through a bare LOADER.load() + one RPC call (the baseline), both against
// the same local server in the same run, interleaved in rounds so drift hits both.
import { join } from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { startNotesServer } from "../examples/local-notes.ts";
import { connectorDeclaration, loadConnectors } from "../src/contracts/index.ts";
import { recordHash } from "../src/evidence/chain.ts";
import { verifyBundle } from "../src/evidence/verify-bundle.ts";
import { pinConnector } from "../src/local/pin-connector.ts";
import { dataDirs, readOnlyContract } from "../test/helpers/data-dirs.ts";
import { startLocalServer } from "../test/helpers/local-server.ts";
import { startHttpUpstream } from "../test/helpers/upstreams.ts";
import { burstBench } from "./burst-bench.ts";
import { exportBench } from "./export-bench.ts";
import { redactionBench } from "./redaction-bench.ts";
import { runawayBench } from "./runaway-bench.ts";
import { stats } from "./stats.ts";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);
const PER_ROUND = Number(process.env.BENCH_PER_ROUND ?? 50);
const WARMUP = 30;
/** In flight at saturation: the shipped policy's interactive budget for acme. */
const SATURATION = 8;
const SATURATION_MS = Number(process.env.BENCH_SATURATION_MS ?? 5_000);
const CODE = "export default async (input) => ({ n: input.n + 1 })";

const fmt = (ms: number) => `${ms.toFixed(2)} ms`.padStart(10);

/**
 * The two local shapes: sandboxes in processes of their own (the default, so a runaway stalls
 * only its process; each run crosses a process boundary that Cloudflare does not have), and
 * every sandbox inside the main runtime through the Worker's own SandboxHost entrypoint,
 * exactly as deployed (SANDBOX_PROCESSES=0).
 */
const ALL_SHAPES: Array<{ name: string; env: Record<string, string> }> = [
  { name: "sandbox processes (npm start's default)", env: {} },
  { name: "as deployed: sandboxes in the Worker's own SandboxHost (SANDBOX_PROCESSES=0)", env: { SANDBOX_PROCESSES: "0" } },
];
const SHAPES = ALL_SHAPES.filter((_, i) => process.env.BENCH_SHAPES === undefined || process.env.BENCH_SHAPES.split(",").includes(String(i)));

async function main(shape: (typeof SHAPES)[number]): Promise<void> {
  const server = await startLocalServer({ env: { LOCAL_BENCH: "1", ...shape.env } });
  try {
    // acme is in the shipped policy (policy/tenants.json): the runs are allowed, signed and admitted.
    const session = `bench-${Date.now()}`;
    const token = await server.token({ tenant: "acme", actor: "bench", session, ttlSeconds: 3600 });
    const requestInit = { headers: { authorization: `Bearer ${token}` } };
    const client = new Client({ name: "agent-exec-bench", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(server.mcpUrl, { requestInit }));
    const modern = new ClientV2({ name: "agent-exec-bench", version: "2.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
    await modern.connect(new TransportV2(server.mcpUrl, { requestInit }));

    const baselineCall = async (n: number) => {
      const response = await fetch(`${server.url}/__bench/baseline`, { method: "POST", body: JSON.stringify({ code: CODE, input: { n } }) });
      const body = (await response.json()) as { result: { n: number } };
      if (body.result.n !== n + 1) throw new Error(`baseline answered ${JSON.stringify(body)}`);
    };
    const mcpCall = async (n: number) => {
      const result = await client.callTool({ name: "analyze_readonly", arguments: { code: CODE, input: { n } } });
      if (result.isError || (result.structuredContent as { result: { n: number } }).result.n !== n + 1)
        throw new Error(`MCP answered ${JSON.stringify(result)}`);
    };
    const modernCall = async (n: number) => {
      const result = await modern.callTool({ name: "analyze_readonly", arguments: { code: CODE, input: { n } } });
      if (result.isError || (result.structuredContent as { result: { n: number } }).result.n !== n + 1)
        throw new Error(`MCP answered ${JSON.stringify(result)}`);
    };
    // The same tools/call as one plain HTTP POST: the platform's cost without any client SDK.
    const rawCall = async (n: number) => {
      const response = await fetch(server.mcpUrl, {
        method: "POST",
        headers: {
          ...requestInit.headers,
          "content-type": "application/json",
          accept: "application/json, text/event-stream",
          "mcp-protocol-version": "2025-06-18",
        },
        body: JSON.stringify({ jsonrpc: "2.0", id: n, method: "tools/call", params: { name: "analyze_readonly", arguments: { code: CODE, input: { n } } } }),
      });
      const text = await response.text();
      if (!text.includes(`{\\"n\\":${n + 1}}`) && !text.includes(`"n":${n + 1}`)) throw new Error(`raw MCP answered ${text.slice(0, 300)}`);
    };
    const hostCall = async (n: number) => {
      const response = await fetch(`${server.url}/__bench/host`, { method: "POST", body: JSON.stringify({ code: CODE, input: { n } }) });
      const body = (await response.json()) as { result: { n: number } };
      if (body.result?.n !== n + 1) throw new Error(`sandbox host answered ${JSON.stringify(body)}`);
    };
    const pipelineCall = async (n: number) => {
      const response = await fetch(`${server.url}/__bench/pipeline`, {
        method: "POST",
        body: JSON.stringify({ code: CODE, input: { n }, session: `${session}-pipeline` }),
      });
      const body = (await response.json()) as { result: { n: number } };
      if (body.result?.n !== n + 1) throw new Error(`pipeline answered ${JSON.stringify(body)}`);
    };
    const timed = async (call: (n: number) => Promise<void>, n: number) => {
      const started = performance.now();
      await call(n);
      return performance.now() - started;
    };

    const paths = [
      { name: "baseline: bare LOADER.load() + RPC", call: baselineCall, samples: [] as number[] },
      { name: "sandbox host, no pipeline", call: hostCall, samples: [] as number[] },
      { name: "run pipeline, no MCP/token", call: pipelineCall, samples: [] as number[] },
      { name: "MCP, 2025-era client (sdk 1.32)", call: mcpCall, samples: [] as number[] },
      { name: "MCP, 2026-07-28 client (2.4)", call: modernCall, samples: [] as number[] },
      { name: "MCP, raw HTTP POST (no SDK)", call: rawCall, samples: [] as number[] },
    ];
    for (let i = 0; i < WARMUP; i++) for (const path of paths) await path.call(i);
    for (let round = 0; round < ROUNDS; round++) {
      for (const path of paths) for (let i = 0; i < PER_ROUND; i++) path.samples.push(await timed(path.call, i));
    }
    await client.close();
    await modern.close();

    // Server-side phases of the MCP runs, from the session's own evidence.
    const finished: Array<{ latencyMs: { start: number; exec: number; total: number } }> = [];
    for (let cursor: number | null = 0; cursor !== null; ) {
      const page = (await (
        await fetch(`${server.url}/v1/sessions/${session}/evidence?limit=500&cursor=${cursor}`, { headers: { authorization: `Bearer ${token}` } })
      ).json()) as {
        records: Array<{ kind: string; latencyMs: { start: number; exec: number; total: number } }>;
        nextCursor: number | null;
      };
      finished.push(...page.records.filter((r) => r.kind === "run.finished"));
      cursor = page.nextCursor;
    }
    const measured = finished.slice(WARMUP * 3);

    const [baseline, host, pipeline, ...mcpPaths] = paths.map((path) => ({ ...path, stats: stats(path.samples) }));
    if (!baseline || !host || !pipeline) throw new Error("no baseline");
    const row = (name: string, cells: string[]) => `${name.padEnd(38)}${cells.map((c) => c.padStart(10)).join("")}`;
    const ratio = (a: number, b: number) => `${(a / b).toFixed(2)}x`;
    const raw = mcpPaths.at(-1);
    if (!raw) throw new Error("no MCP path");
    const lines = [
      `agent-exec bench, ${shape.name}: ${ROUNDS} interleaved rounds x ${PER_ROUND} sequential calls per path (after ${WARMUP} warm-up calls each), local wrangler dev on workerd`,
      "",
      row("", ["p50", "p95", "p99", "mean", "p50 ratio"]),
      ...[baseline, host, pipeline, ...mcpPaths].map((p) =>
        row(p.name, [fmt(p.stats.p50), fmt(p.stats.p95), fmt(p.stats.p99), fmt(p.stats.mean), ratio(p.stats.p50, baseline.stats.p50)]),
      ),
      "",
      `where the raw MCP path's extra ${(raw.stats.p50 - baseline.stats.p50).toFixed(2)} ms at p50 go:`,
      `  the sandbox host (locally: router, sandbox process): ${(host.stats.p50 - baseline.stats.p50).toFixed(2)} ms (host - baseline)`,
      `  intake + policy + two evidence writes:             ${(pipeline.stats.p50 - host.stats.p50).toFixed(2)} ms (pipeline - host)`,
      `  MCP protocol handling + token verification:     ${(raw.stats.p50 - pipeline.stats.p50).toFixed(2)} ms (raw MCP - pipeline)`,
      "",
      `server-side phases of the ${measured.length} measured MCP runs (from evidence, ms resolution):`,
      ...(["start", "exec", "total"] as const).map((phase) => {
        const s = stats(measured.map((r) => r.latencyMs[phase]));
        return `  ${phase.padEnd(6)} p50 ${s.p50} ms  p95 ${s.p95} ms  p99 ${s.p99} ms`;
      }),
      "",
      ...[pipeline, ...mcpPaths].map((p) => {
        const r = p.stats.p50 / baseline.stats.p50;
        const h = p.stats.p50 / host.stats.p50;
        return `p50 ${p.name}: ${r.toFixed(2)}x baseline (+${(p.stats.p50 - baseline.stats.p50).toFixed(2)} ms; ${h.toFixed(2)}x the sandbox host alone)`;
      }),
      `target raw MCP p50 <= 1.3x baseline: ${raw.stats.p50 <= 1.3 * baseline.stats.p50 ? "met" : "NOT met"} (${(raw.stats.p50 / baseline.stats.p50).toFixed(2)}x); p99 <= 1.5x: ${raw.stats.p99 <= 1.5 * baseline.stats.p99 ? "met" : "NOT met"} (${(raw.stats.p99 / baseline.stats.p99).toFixed(2)}x)`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
    await throughput(baselineCall, rawCall);
    await chainCost(server.url, session, token, raw.stats.p50);
    await budgetCeiling(server.url);
  } finally {
    await server.stop();
  }
}

/** Calls per second at saturation, one tenant with SATURATION calls in flight (its interactive budget), raw MCP beside the baseline. */
async function throughput(baselineCall: (n: number) => Promise<void>, rawCall: (n: number) => Promise<void>): Promise<void> {
  const saturate = async (call: (n: number) => Promise<void>) => {
    const until = performance.now() + SATURATION_MS;
    let done = 0;
    const started = performance.now();
    await Promise.all(
      Array.from({ length: SATURATION }, async (_, lane) => {
        for (let i = 0; performance.now() < until; i++) {
          await call(lane * 1_000_000 + i);
          done++;
        }
      }),
    );
    return (done / (performance.now() - started)) * 1000;
  };
  // alternated, so drift of the machine hits both
  const baseline: number[] = [];
  const mcp: number[] = [];
  for (let round = 0; round < 2; round++) {
    baseline.push(await saturate(baselineCall));
    mcp.push(await saturate(rawCall));
  }
  const b = baseline.reduce((a, x) => a + x, 0) / baseline.length;
  const m = mcp.reduce((a, x) => a + x, 0) / mcp.length;
  process.stdout.write(
    [
      "",
      `throughput at saturation (${SATURATION} in flight, one tenant, 2 x ${SATURATION_MS / 1000} s each, alternated):`,
      `  baseline: bare LOADER.load() + RPC   ${b.toFixed(1)} calls/s`,
      `  MCP, raw HTTP POST                   ${m.toFixed(1)} calls/s  (${(m / b).toFixed(2)}x; target >= 0.7x: ${m / b >= 0.7 ? "met" : "NOT met"})`,
      "",
    ].join("\n"),
  );
}

/** How many slots one tenant's budget object leases and takes back per second, with and without the isolate's reserve. */
async function budgetCeiling(url: string): Promise<void> {
  const lines = ["budget ceiling: one tenant's slots leased and given back as fast as they go, from one isolate (3 s each):"];
  for (const inFlight of [8, 32]) {
    for (const reserve of [false, true]) {
      const response = await fetch(`${url}/__bench/budget`, {
        method: "POST",
        body: JSON.stringify({ tenant: `ceiling-${inFlight}-${reserve ? "reserve" : "direct"}-${Date.now()}`, ms: 3_000, inFlight, reserve }),
      });
      const body = (await response.json()) as { leases: number; perSecond: number; refused: number };
      lines.push(
        `  ${String(inFlight).padStart(2)} in flight, ${reserve ? "through the isolate's reserve" : "each from the budget object "}: ${String(body.perSecond).padStart(6)} leases/s (${body.leases} leases, ${body.refused} refused)`,
      );
    }
  }
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * What the hash chain costs: the CPU of hashing one record (canonical JSON + SHA-256, the
 * work the ledger adds per append) on the bench session's own records, beside the MCP call
 * it belongs to (two records per call) from the same run; and what an auditor pays to
 * export and verify the whole session.
 */
async function chainCost(url: string, session: string, token: string, callP50: number): Promise<void> {
  const exportStarted = performance.now();
  const response = await fetch(`${url}/v1/sessions/${session}/export`, { headers: { authorization: `Bearer ${token}` } });
  const body = await response.text();
  const exportMs = performance.now() - exportStarted;
  if (!response.ok) throw new Error(`export answered ${response.status}: ${body.slice(0, 300)}`);
  const bundle = JSON.parse(body) as { records: Array<Record<string, unknown> & { kind: string }> };
  const jwks = await (await fetch(`${url}/.well-known/jwks.json`)).json();

  const REPEAT = 20;
  const perRecord = (kind: string) => {
    const records = bundle.records.filter((r) => r.kind === kind);
    for (const record of records.slice(0, 200)) recordHash(record); // warm the JIT
    const samples = records.map((record) => {
      const started = performance.now();
      for (let i = 0; i < REPEAT; i++) recordHash(record);
      return ((performance.now() - started) / REPEAT) * 1000;
    });
    const bytes = records.reduce((sum, r) => sum + JSON.stringify(r).length, 0) / Math.max(1, records.length);
    return { ...stats(samples), n: records.length, bytes };
  };
  const start = perRecord("run.started");
  const finish = perRecord("run.finished");
  const perCallUs = start.p50 + finish.p50;

  const verifyStarted = performance.now();
  const report = await verifyBundle(JSON.parse(body), { jwks });
  const verifyMs = performance.now() - verifyStarted;
  if (!report.ok) throw new Error(`the bench session's own export does not verify: ${JSON.stringify(report.problems.slice(0, 3))}`);

  const us = (value: number) => `${value.toFixed(1)} µs`;
  const lines = [
    "",
    `hash chain, on the ${bundle.records.length} records of the MCP bench session (Node, same V8 and @noble/hashes as workerd; each record hashed ${REPEAT}x):`,
    `  run.started  (${start.n}, ~${start.bytes.toFixed(0)} B)  p50 ${us(start.p50)}  p95 ${us(start.p95)}  p99 ${us(start.p99)}`,
    `  run.finished (${finish.n}, ~${finish.bytes.toFixed(0)} B)  p50 ${us(finish.p50)}  p95 ${us(finish.p95)}  p99 ${us(finish.p99)}`,
    `  per call (one start + one finish): ${us(perCallUs)} at p50 = ${((perCallUs / 1000 / callP50) * 100).toFixed(2)}% of the raw MCP call's p50 (${callP50.toFixed(2)} ms) in this run`,
    `export of the session: ${bundle.records.length} records, ${(body.length / 1024).toFixed(0)} KiB in ${exportMs.toFixed(0)} ms; verifying it: ${verifyMs.toFixed(0)} ms (${Math.round(bundle.records.length / (verifyMs / 1000))} records/s)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
}

/**
 * Runtime profiles: the egress gateway's cost per outbound request against the host Worker
 * fetching the same local upstream directly, and how long the local watchdog takes to stop a
 * busy loop and have the runtime serving again. A second server, with bench contracts.
 */
/** A connector of `n` typed operations (three arguments each), for the size of a large catalogue's description. */
function bigConnector(n: number) {
  const operations = Object.fromEntries(
    Array.from({ length: n }, (_, i) => [
      `operation${i}`,
      {
        description: `Does thing number ${i} to an issue.`,
        effect: "read",
        method: "GET",
        path: `things/{id}/op${i}`,
        arguments: {
          type: "object",
          properties: { id: { type: "string" }, limit: { type: "integer" }, labels: { type: "array", items: { type: "string" } } },
          required: ["id"],
        },
      },
    ]),
  );
  return { name: "big", description: "A large catalogue.", kind: "http", baseUrl: "https://big.bench.test/", operations };
}

async function runtimeProfiles(): Promise<void> {
  const upstream = await startHttpUpstream("unused");
  const NOTES_TOKEN = "bench-notes-token-5d1c9e";
  const notes = await startNotesServer({ token: NOTES_TOKEN, notes: [{ id: "n1", title: "bench", body: "a note" }] });
  const url = `http://127.0.0.1:${upstream.port}/allowed/echo`;
  const contract = readOnlyContract;
  const notesRule = {
    host: "notes.bench.test",
    protocol: "https",
    methods: ["POST"],
    paths: ["/mcp"],
    capability: "connector:notes",
    inject: { header: "authorization", secret: "EGRESS_NOTES_TOKEN", format: "Bearer {secret}" },
  };
  const dirs = dataDirs(
    {
      "bench-egress": contract("bench-egress", "bench_egress", {
        limits: { wallMs: 30_000, subRequests: 1_000 },
        egress: [{ host: "127.0.0.1", protocol: "http", ports: [upstream.port], paths: ["/allowed/"] }],
      }),
      "bench-quick": contract("bench-quick", "bench_quick", { limits: { wallMs: 1_000 } }),
      "bench-connector": contract("bench-connector", "bench_connector", {
        limits: { wallMs: 30_000, subRequests: 1_000 },
        actions: ["echo.read"],
        connectors: [{ connector: "echo", operations: ["echo"] }],
        egress: [{ host: "echo.bench.test", protocol: "https", paths: ["/allowed/"], capability: "connector:echo" }],
      }),
      "bench-mcp": contract("bench-mcp", "bench_mcp", {
        limits: { wallMs: 30_000, subRequests: 1_000 },
        actions: ["notes.read"],
        connectors: [{ connector: "notes", operations: ["searchNotes"] }],
        egress: [notesRule],
      }),
      // the same, in a run that keeps a journal (it could call a privileged operation)
      "bench-mcp-journal": contract("bench-mcp-journal", "bench_mcp_journal", {
        limits: { wallMs: 30_000, subRequests: 1_000 },
        actions: ["notes.read", "notes.privileged"],
        connectors: [{ connector: "notes", operations: ["searchNotes", "deleteNote"] }],
        egress: [notesRule],
      }),
      "bench-catalog": contract("bench-catalog", "bench_catalog", {
        limits: { subRequests: 10 },
        actions: ["big.read"],
        connectors: [{ connector: "big", operations: ["*"] }],
        egress: [{ host: "big.bench.test", protocol: "https", capability: "connector:big" }],
      }),
    },
    {
      tenants: {
        acme: {
          phases: [1],
          teams: {
            all: {
              members: ["*"],
              grants: [
                { contract: "bench-egress", maxDataClass: "internal" },
                { contract: "bench-quick", maxDataClass: "internal" },
                { contract: "bench-connector", maxDataClass: "internal", actions: ["*"] },
                { contract: "bench-mcp", maxDataClass: "internal" },
                { contract: "bench-mcp-journal", maxDataClass: "internal" },
                { contract: "bench-catalog", maxDataClass: "internal" },
              ],
            },
          },
        },
      },
    },
    // the same echo as a connector operation: https://echo.bench.test/ is the upstream (EGRESS_RESOLVE)
    {
      echo: {
        name: "echo",
        description: "The bench's echo upstream.",
        kind: "http",
        baseUrl: "https://echo.bench.test/",
        operations: { echo: { description: "Echoes the request.", effect: "read", method: "GET", path: "allowed/echo" } },
      },
      notes: {
        name: "notes",
        description: "The notes MCP server (examples/local-notes.ts).",
        kind: "mcp",
        url: "https://notes.bench.test/mcp",
        operations: { searchNotes: { tool: "search_notes", effect: "read" }, deleteNote: { tool: "delete_note", effect: "privileged" } },
      },
      big: bigConnector(50),
    },
  );
  const resolveMap = { "echo.bench.test": `http://127.0.0.1:${upstream.port}`, "notes.bench.test": `http://127.0.0.1:${notes.port}` };
  await pinConnector(join(dirs.CONNECTORS_DIR, "notes.json"), { bearer: NOTES_TOKEN, resolveMap });
  const server = await startLocalServer({
    env: { ...dirs, LOCAL_BENCH: "1", EGRESS_NOTES_TOKEN: NOTES_TOKEN, EGRESS_RESOLVE: JSON.stringify(resolveMap) },
  });
  try {
    const token = await server.token({ tenant: "acme", actor: "bench", session: `bench-profiles-${Date.now()}`, ttlSeconds: 3600 });
    const client = new Client({ name: "agent-exec-bench", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(server.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    const PER_ROUND = 25;
    const loop = `export default async (input) => { const t0 = Date.now(); for (let i = 0; i < input.n; i++) await (await fetch(input.url)).text(); return Date.now() - t0; }`;
    const direct = async () =>
      ((await (await fetch(`${server.url}/__bench/fetch`, { method: "POST", body: JSON.stringify({ url, n: PER_ROUND }) })).json()) as { totalMs: number })
        .totalMs / PER_ROUND;
    const viaGateway = async () => {
      const result = await client.callTool({ name: "bench_egress", arguments: { code: loop, input: { url, n: PER_ROUND } } });
      return ((result.structuredContent as { result: number }).result ?? Number.NaN) / PER_ROUND;
    };
    const operations = `export default async (input, ctx) => { const t0 = Date.now(); for (let i = 0; i < input.n; i++) await ctx.env.echo.echo({}); return Date.now() - t0; }`;
    const viaConnector = async () => {
      const result = await client.callTool({ name: "bench_connector", arguments: { code: operations, input: { n: PER_ROUND } } });
      return ((result.structuredContent as { result: number }).result ?? Number.NaN) / PER_ROUND;
    };
    const searches = `export default async (input, ctx) => { const t0 = Date.now(); for (let i = 0; i < input.n; i++) await ctx.env.notes.searchNotes({ query: "note" }); return Date.now() - t0; }`;
    const viaMcp = (tool: string) => async () => {
      const result = await client.callTool({ name: tool, arguments: { code: searches, input: { n: PER_ROUND } } });
      return ((result.structuredContent as { result: number }).result ?? Number.NaN) / PER_ROUND;
    };
    for (let i = 0; i < 3; i++) {
      await direct();
      await viaGateway();
      await viaConnector();
      await viaMcp("bench_mcp")();
      await viaMcp("bench_mcp_journal")();
    }
    const directMs: number[] = [];
    const gatewayMs: number[] = [];
    const connectorMs: number[] = [];
    const mcpMs: number[] = [];
    const journalMs: number[] = [];
    for (let round = 0; round < 20; round++) {
      directMs.push(await direct());
      gatewayMs.push(await viaGateway());
      connectorMs.push(await viaConnector());
      mcpMs.push(await viaMcp("bench_mcp")());
      journalMs.push(await viaMcp("bench_mcp_journal")());
    }
    const d = stats(directMs);
    const g = stats(gatewayMs);
    const o = stats(connectorMs);
    const m = stats(mcpMs);
    const j = stats(journalMs);
    // the tool description of a contract granting a 50-operation connector, as tools/list serves it, against its full declarations
    const listed = (await client.listTools()).tools.find((tool) => tool.name === "bench_catalog")?.description ?? "";
    const big = loadConnectors([{ file: "big.json", json: bigConnector(50) }]);
    const declarations = big.ok && big.connectors[0] ? connectorDeclaration(big.connectors[0], Object.keys(big.connectors[0].operations)) : "";

    const recoveries: string[] = [];
    for (let i = 0; i < 3; i++) {
      const started = performance.now();
      const result = await client.callTool({ name: "bench_quick", arguments: { code: "export default () => { while (true) {} }" } });
      const answered = performance.now();
      const termination = (result.structuredContent as { termination?: string }).termination;
      await client.callTool({ name: "bench_quick", arguments: { code: "export default () => 1" } });
      const serving = performance.now();
      recoveries.push(
        `  busy loop ${i + 1}: answered ${termination} after ${(answered - started).toFixed(0)} ms; the next call completed ${(serving - answered).toFixed(0)} ms later`,
      );
    }
    await client.close();
    const restarts = [...server.output().matchAll(/sandbox-\d+: serving again (\d+) ms after it was lost/g)].map((m) => Number(m[1]));

    const lines = [
      "",
      `egress gateway, ${20} rounds x ${PER_ROUND} sequential GETs of a local upstream, mean per request within each round (workerd clock):`,
      `  direct fetch from the host Worker   p50 ${d.p50.toFixed(2)} ms  p95 ${d.p95.toFixed(2)} ms`,
      `  through the egress gateway          p50 ${g.p50.toFixed(2)} ms  p95 ${g.p95.toFixed(2)} ms`,
      `  gateway cost per request at p50: +${(g.p50 - d.p50).toFixed(2)} ms (${(g.p50 / d.p50).toFixed(2)}x)  [rule check, header filtering, evidence write of the attempt]`,
      `  as a connector operation           p50 ${o.p50.toFixed(2)} ms  p95 ${o.p95.toFixed(2)} ms`,
      `  per operation over a direct fetch at p50: +${(o.p50 - d.p50).toFixed(2)} ms (${(o.p50 / d.p50).toFixed(2)}x)  [RPC to the connector binding, argument check, the gateway, the call's own record]`,
      `  as an MCP connector operation      p50 ${m.p50.toFixed(2)} ms  p95 ${m.p95.toFixed(2)} ms  (+${(m.p50 - d.p50).toFixed(2)} ms, ${(m.p50 / d.p50).toFixed(2)}x over a direct fetch)  [the SDK client per call: initialize, initialized, tools/call through the gateway; the pin check's tools/list once per run]`,
      `  the same in a run that keeps a journal p50 ${j.p50.toFixed(2)} ms  p95 ${j.p95.toFixed(2)} ms  (+${(j.p50 - m.p50).toFixed(2)} ms per call: the approval desk asked before and after each call)`,
      "",
      "tool description of a contract granting a 50-operation connector (three typed arguments each):",
      `  with on-demand discovery (tools/list, whole description): ${listed.length} characters`,
      `  the declarations it would carry without it: ${declarations.length} characters`,
      "",
      "local watchdog (contract wall clock 1000 ms; the caller answers at + 250 ms, the stalled sandbox process is probed at + 350 ms for 400 ms):",
      ...recoveries,
      `  sandbox process lost to serving again (supervisor log): ${restarts.map((ms) => `${ms} ms`).join(", ") || "not logged"}`,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await server.stop();
    await upstream.close();
    await notes.close();
  }
}

if (process.env.BENCH_MAIN !== "0") for (const shape of SHAPES) await main(shape);
if (process.env.BENCH_PROFILES !== "0") await runtimeProfiles();
if (process.env.BENCH_BURST !== "0") await burstBench();
if (process.env.BENCH_REDACTION !== "0") await redactionBench();
if (process.env.BENCH_RUNAWAY !== "0") await runawayBench();
if (process.env.BENCH_EXPORT !== "0") await exportBench();
