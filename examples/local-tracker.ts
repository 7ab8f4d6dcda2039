// A minimal issue tracker on 127.0.0.1 that the tracker capability talks to:
// GET /issues/{id}, POST /issues/{id}/comments {body}, POST /issues/{id}/labels {labels},
// each requiring `Authorization: Bearer <token>`. Used by examples/tracker.ts and the tests.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { parseArgs } from "node:util";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { ensureDevKey } from "../src/local/dev-keys.ts";
import { localAuthSettings, mintToken } from "../src/local/mint-token.ts";

export type Issue = { id: string; comments: string[]; labels: string[] };

/** Answers one tracker request; false when the path is not the tracker's. */
export function handleTrackerRequest(issues: Map<string, Issue>, token: string, request: IncomingMessage, body: string, response: ServerResponse): boolean {
  const match = /^\/issues\/([^/?]+)(?:\/(comments|labels))?$/.exec((request.url ?? "/").split("?")[0] ?? "/");
  if (!match?.[1]) return false;
  const json = (status: number, value: unknown) => {
    const text = JSON.stringify(value);
    response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
    response.end(text);
  };
  if (request.headers.authorization !== `Bearer ${token}`) {
    json(401, { error: "unauthorized" });
    return true;
  }
  const issue = issues.get(match[1]) ?? { id: match[1], comments: [], labels: [] };
  issues.set(match[1], issue);
  const payload = JSON.parse(body || "{}") as { body?: string; labels?: string[] };
  if (!match[2] && request.method === "GET") json(200, issue);
  else if (match[2] === "comments" && request.method === "POST") {
    issue.comments.push(String(payload.body));
    json(201, { id: issue.comments.length });
  } else if (match[2] === "labels" && request.method === "POST") {
    issue.labels.push(...(payload.labels ?? []));
    json(200, { labels: issue.labels });
  } else json(405, { error: "method not allowed" });
  return true;
}

export async function startLocalTracker(port: number, token: string): Promise<{ issues: Map<string, Issue>; close: () => Promise<void> }> {
  const issues = new Map<string, Issue>();
  const server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      if (!handleTrackerRequest(issues, token, request, body, response)) response.writeHead(404).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return { issues, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

/**
 * What both tracker examples start with: their flags (--url, --tracker-port, --tracker-token),
 * the local tracker, a token of tenant acme's triage-bot, and an MCP client connected with it.
 */
export async function trackerExample(clientName: string) {
  const { values } = parseArgs({
    options: {
      url: { type: "string", default: `http://127.0.0.1:${process.env.PORT ?? 8787}` },
      "tracker-port": { type: "string", default: "9400" },
      "tracker-token": { type: "string", default: process.env.EGRESS_TRACKER_TOKEN ?? "demo-token" },
      // the connector example's notes MCP server (examples/local-notes.ts)
      "notes-port": { type: "string", default: "9401" },
      "notes-token": { type: "string", default: process.env.EGRESS_NOTES_TOKEN ?? "demo-notes-token" },
    },
  });
  const tracker = await startLocalTracker(Number(values["tracker-port"]), values["tracker-token"]);
  const { token, session } = await mintToken({ key: await ensureDevKey(), ...(await localAuthSettings()), tenant: "acme", actor: "triage-bot" });
  const client = new Client({ name: clientName, version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL("/mcp", values.url), { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
  return { url: values.url, tracker, token, session, client, notes: { port: Number(values["notes-port"]), token: values["notes-token"] } };
}

/**
 * Prints how an example's run ended and what the tracker received; exit code 1 (and why) when
 * the run did not reach the tracker: the server was not started with the example's settings
 * (see the top of the example), or policy refused the run.
 */
export function reportTrackerRun(result: { structuredContent?: unknown }, issues: Map<string, Issue>, issue: string): void {
  const run = result.structuredContent as { runId: string; termination: string; result?: unknown; error?: { code: string; message: string } };
  console.log(`run ${run.runId}: ${run.termination} ${JSON.stringify(run.result ?? run.error)}`);
  const received = issues.get(issue);
  console.log(`tracker received: ${JSON.stringify(received)}`);
  if (run.termination !== "completed" || received === undefined) {
    process.exitCode = 1;
    console.error(
      `The run did not reach the tracker (${run.termination}${run.error ? `: ${run.error.code}` : ""}). Start the server with the settings at the top of this example and run this again.`,
    );
  }
}
