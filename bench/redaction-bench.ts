// What redaction costs (issue 7): the p50 of a call whose result, console output and error
// are redacted (redaction.result) beside the same call without, interleaved against one
// server; and the detectors themselves on typical texts (Node, the same code the Worker runs).
// Evidence and logs are always redacted; a call that succeeds has nothing there to redact.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { redactor } from "../src/redaction/index.ts";
import { dataDirs, readOnlyContract } from "../test/helpers/data-dirs.ts";
import { startLocalServer } from "../test/helpers/local-server.ts";
import { stats } from "./stats.ts";

const ROUNDS = 10;
const PER_ROUND = 40;
/** A result with a secret in it and some ordinary text around (about 1 KB). */
const CODE = `export default () => { console.log("token ghp_R8fK2mN4pQ7sT1vX3zB6dF9hJ0kL5wY2cE4g"); return { note: "lorem ipsum ".repeat(80), key: "AKIAQYLPMN5HHHFPZAM2" }; }`;

export async function redactionBench(): Promise<void> {
  const contract = (id: string, tool: string, redaction: object) => readOnlyContract(id, tool, { redaction });
  const contracts = {
    "bench-plain": contract("bench-plain", "bench_plain", { result: false }),
    "bench-redacted": contract("bench-redacted", "bench_redacted", { result: true, rules: [{ name: "employee_id", pattern: "EMP-\\d{6}" }] }),
  };
  const grants = Object.keys(contracts).map((id) => ({ contract: id, maxDataClass: "internal" }));
  const server = await startLocalServer({ env: dataDirs(contracts, { tenants: { acme: { phases: [1], teams: { all: { members: ["*"], grants } } } } }) });
  try {
    const token = await server.token({ tenant: "acme", actor: "bench", session: `bench-redaction-${Date.now()}`, ttlSeconds: 3600 });
    const client = new Client({ name: "agent-exec-bench", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(server.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    const call = async (tool: string) => {
      const started = performance.now();
      const result = await client.callTool({ name: tool, arguments: { code: CODE } });
      const ms = performance.now() - started;
      const text = JSON.stringify(result.structuredContent);
      if (tool === "bench_redacted" && text.includes("AKIAQYLPMN5HHHFPZAM2")) throw new Error("the redacted contract leaked its result");
      if (tool === "bench_plain" && !text.includes("AKIAQYLPMN5HHHFPZAM2")) throw new Error("the plain contract redacted its result");
      return ms;
    };
    for (let i = 0; i < 20; i++) {
      await call("bench_plain");
      await call("bench_redacted");
    }
    const plain: number[] = [];
    const redacted: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (let i = 0; i < PER_ROUND; i++) plain.push(await call("bench_plain"));
      for (let i = 0; i < PER_ROUND; i++) redacted.push(await call("bench_redacted"));
    }
    await client.close();

    const redact = redactor({ secrets: ["tracker-token-0123456789"] });
    const texts: Array<[string, string]> = [
      ["error message, 200 B, one secret", `The code threw: Error: request failed with Bearer 4f9c2d7e1b3a8c6d5e0f9a2b7c4d1e8f at ${"x".repeat(120)}`],
      ["input JSON, 1 KB, no secret", JSON.stringify({ rows: Array.from({ length: 30 }, (_, i) => ({ id: i, name: `row ${i}` })) })],
      ["code, 10 KB, no secret", `export default (input) => {\n${"  const a = input.values.map((v) => v * 2);\n".repeat(220)}}`],
    ];
    const micro = texts.map(([name, text]) => {
      for (let i = 0; i < 200; i++) redact.text(text);
      const samples: number[] = [];
      for (let i = 0; i < 2_000; i++) {
        const started = performance.now();
        redact.text(text);
        samples.push((performance.now() - started) * 1000);
      }
      const s = stats(samples);
      return `  ${name.padEnd(36)} p50 ${s.p50.toFixed(1)} µs  p95 ${s.p95.toFixed(1)} µs`;
    });

    const p = stats(plain);
    const r = stats(redacted);
    const ms = (v: number) => `${v.toFixed(2)} ms`;
    const lines = [
      "",
      `redaction, ${ROUNDS} interleaved rounds x ${PER_ROUND} calls per contract (a ~1 KB result and a console line, each with a secret):`,
      `  result not redacted (redaction.result false)   p50 ${ms(p.p50)}  p95 ${ms(p.p95)}  p99 ${ms(p.p99)}`,
      `  result, console and error redacted             p50 ${ms(r.p50)}  p95 ${ms(r.p95)}  p99 ${ms(r.p99)}`,
      `  added at p50: ${(r.p50 - p.p50).toFixed(2)} ms (${((r.p50 / p.p50 - 1) * 100).toFixed(1)}%)`,
      "the detectors on typical texts (Node, same code as the Worker):",
      ...micro,
    ];
    process.stdout.write(`${lines.join("\n")}\n`);
  } finally {
    await server.stop();
  }
}
