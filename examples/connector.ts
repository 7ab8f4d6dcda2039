// Connectors end to end: the team's notes, an MCP server (examples/connector-demo/connectors/
// notes.json, its tool list pinned there), and the issue tracker's HTTP API (issues.json),
// granted by one contract and called by an agent's code as ctx.env.notes.<operation>(args)
// and ctx.env.issues.<operation>(args). Starts both on 127.0.0.1, runs one triage call that
// reads the notes, computes, and writes to the tracker, then shows what the tracker received
// and what the evidence recorded of each operation. Start the server on the example's
// folders first:
//
//   CONTRACTS_DIR=examples/connector-demo/contracts CONNECTORS_DIR=examples/connector-demo/connectors \
//   POLICY_DIR=examples/connector-demo/policy EGRESS_TRACKER_TOKEN=demo-token EGRESS_NOTES_TOKEN=demo-notes-token \
//   EGRESS_RESOLVE='{"tracker.example.com":"http://127.0.0.1:9400","notes.example.com":"http://127.0.0.1:9401"}' npm start
//   npm run example:connector
import { startNotesServer } from "./local-notes.ts";
import { reportTrackerRun, trackerExample } from "./local-tracker.ts";

const { url, tracker, token, session, client, notes: notesAt } = await trackerExample("agent-exec-connector-example");
const notes = await startNotesServer({
  token: notesAt.token,
  port: notesAt.port,
  notes: [
    { id: "n1", title: "OPS-42 inventory timeouts", body: "Timeouts since 09:10; the runbook is INV-7." },
    { id: "n2", title: "OPS-42 follow-up", body: "Retries help; see INV-9 as well." },
  ],
});
try {
  const tool = (await client.listTools()).tools.find((candidate) => candidate.name === "triage_issues");
  if (!tool) {
    console.error("The server has no triage_issues tool: start it on the example's folders (see the top of this file).");
    process.exit(1);
  }
  // what the agent is told: TypeScript declarations generated from the connector's schemas
  console.log(/```ts\n([\s\S]*?)\n```/.exec(tool.description ?? "")?.[1] ?? "(no declarations in the description)");
  const result = await client.callTool({
    name: "triage_issues",
    arguments: {
      code: `export default async (input, ctx) => {
        const before = await ctx.env.issues.getIssue({ id: input.issue });
        const { notes } = await ctx.env.notes.searchNotes({ query: input.issue });
        const runbooks = [...new Set(notes.flatMap((note) => note.body.match(/INV-[0-9]+/g) ?? []))];
        await ctx.env.issues.addComment({ id: input.issue, body: "Triaged from " + notes.length + " notes; runbooks: " + runbooks.join(", ") });
        await ctx.env.issues.addLabels({ id: input.issue, labels: ["triaged", "inventory"] });
        const after = await ctx.env.issues.getIssue({ id: input.issue });
        return { before: before.labels.length, after: after.labels, runbooks };
      }`,
      input: { issue: "OPS-42" },
    },
  });
  await client.close();
  reportTrackerRun(result, tracker.issues, "OPS-42");
  const evidence = (await (await fetch(`${url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
    records: Array<{
      kind: string;
      activity?: { capabilities: { calls: Array<{ capability: string; method: string; decision: string; status?: number | null }> } };
    }>;
  };
  for (const record of evidence.records.filter((r) => r.kind === "run.finished")) {
    for (const call of record.activity?.capabilities.calls ?? []) {
      console.log(`evidence: ${call.capability} ${call.method} ${call.decision} ${call.status ?? "-"}`);
    }
  }
} finally {
  await tracker.close();
  await notes.close();
}
