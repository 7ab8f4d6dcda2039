// The tracker capability end to end: starts a local issue tracker on 127.0.0.1, has an
// agent comment on and label an issue through env.TRACKER (mutate_controlled), then shows
// what the tracker received and what the run's evidence recorded. Start the server with
// the tracker's token and address first:
//
//   EGRESS_TRACKER_TOKEN=demo-token EGRESS_RESOLVE='{"tracker.example.com":"http://127.0.0.1:9400"}' npm start
//   npm run example:tracker
import { reportTrackerRun, trackerExample } from "./local-tracker.ts";

const { url, tracker, token, session, client } = await trackerExample("agent-exec-tracker-example");
try {
  const result = await client.callTool({
    name: "mutate_controlled",
    arguments: {
      code: `export default async (input, ctx) => {
        await ctx.env.TRACKER.comment(input.issue, "Triaged: inventory timeouts since 09:10, see runbook.");
        await ctx.env.TRACKER.label(input.issue, ["triaged", "inventory"]);
        return ctx.env.TRACKER.getIssue(input.issue);
      }`,
      input: { issue: "OPS-42", target: "OPS-42" },
      plan: { destinations: ["https://tracker.example.com"] },
    },
  });
  await client.close();
  reportTrackerRun(result, tracker.issues, "OPS-42");

  const evidence = (await (await fetch(`${url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
    records: Array<{
      kind: string;
      activity?: {
        egress: { attempts: Array<{ destination: string; method: string; decision: string; status: number; injected: string[]; drift: boolean }> };
        capabilities: { calls: Array<{ method: string; decision: string }> };
      };
    }>;
  };
  const finish = evidence.records.find((r) => r.kind === "run.finished");
  for (const call of finish?.activity?.capabilities.calls ?? []) console.log(`evidence: capability tracker.${call.method} ${call.decision}`);
  for (const a of finish?.activity?.egress.attempts ?? [])
    console.log(`evidence: egress ${a.method} ${a.destination} ${a.decision} ${a.status} injected=${a.injected.join(",")} drift=${a.drift}`);
} finally {
  await tracker.close();
}
