// A small agent: gets a token, lists the tools, runs some analysis code in the
// sandbox, then prints the session's evidence. Run it against `npm start`:
//
//   npm run example:agent                 # http://127.0.0.1:8787/mcp
//   npm run example:agent -- --url http://127.0.0.1:9000/mcp
import { parseArgs } from "node:util";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { ensureDevKey } from "../src/local/dev-keys.ts";
import { localAuthSettings, mintToken } from "../src/local/mint-token.ts";

const { values } = parseArgs({
  options: {
    url: { type: "string", default: `http://127.0.0.1:${process.env.PORT ?? 8787}/mcp` },
    tenant: { type: "string", default: "acme" },
    actor: { type: "string", default: "example-agent" },
  },
});
const mcpUrl = new URL(values.url);

// 1. A token for this agent, signed with the local development key (what `npm run token` prints).
// The operator role lets it reach the privileged contract's approval gate (policy/tenants.json).
const { token, session } = await mintToken({
  key: await ensureDevKey(),
  ...(await localAuthSettings()),
  tenant: values.tenant,
  actor: values.actor,
  roles: ["operator"],
});
console.log(`session ${session} as ${values.actor}@${values.tenant}`);

const client = new Client({ name: "agent-exec-example", version: "1.0.0" }, { versionNegotiation: { mode: "auto" } });
await client.connect(new StreamableHTTPClientTransport(mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));

// 2. One tool per capability contract.
const { tools } = await client.listTools();
for (const tool of tools) console.log(`tool ${tool.name}: readOnly=${tool.annotations?.readOnlyHint} destructive=${tool.annotations?.destructiveHint}`);

// 3. Run code: summarise some log lines in a fresh sandbox.
const code = `export default async (input) => {
  const byLevel = {};
  for (const line of input.lines) {
    const level = line.split(" ")[0];
    byLevel[level] = (byLevel[level] ?? 0) + 1;
  }
  console.log("analysed", input.lines.length, "lines");
  return byLevel;
}`;
const result = await client.callTool({
  name: "analyze_readonly",
  arguments: { code, input: { lines: ["INFO start", "WARN slow disk", "INFO ok", "ERROR timeout", "INFO done"] } },
});
// Every call answers with the same envelope (the tool's outputSchema): runId, termination, result or error, logs.
type RunEnvelope = { runId: string; termination: string; result?: unknown; error?: { code: string; hint: string }; logs: unknown[] };
const run = result.structuredContent as RunEnvelope;
console.log("result", JSON.stringify(run.result), "logs", JSON.stringify(run.logs));
if (run.termination !== "completed") {
  console.error(`The call did not complete (${run.termination}: ${run.error?.code} ${run.error?.hint ?? ""}).`);
  process.exitCode = 1;
}

// 4. A call that is not run: the privileged contract needs a human approval.
const refused = await client.callTool({ name: "change_privileged", arguments: { code: "export default () => 'deploy'", input: { reason: "demo" } } });
console.log("privileged", refused.isError ? `refused: ${(refused.structuredContent as RunEnvelope).error?.code}` : "ran?!");
if (!refused.isError) process.exitCode = 1;
await client.close();

// 5. What the evidence says happened in this session.
const evidenceUrl = new URL(`/v1/sessions/${session}/evidence`, mcpUrl);
const evidence = (await (await fetch(evidenceUrl, { headers: { authorization: `Bearer ${token}` } })).json()) as {
  records: Array<{
    seq: number;
    kind: string;
    runId: string;
    contract: { id: string };
    termination?: string;
    latencyMs?: { start: number | null; total: number };
  }>;
};
for (const r of evidence.records) {
  const detail = r.kind === "run.finished" ? ` ${r.termination} start=${r.latencyMs?.start}ms total=${r.latencyMs?.total}ms` : "";
  console.log(`evidence #${r.seq} ${r.kind} ${r.contract.id} ${r.runId}${detail}`);
}
