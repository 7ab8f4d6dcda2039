// A minimal issue tracker on 127.0.0.1 that the tracker capability talks to:
// GET /issues/{id}, POST /issues/{id}/comments {body}, POST /issues/{id}/labels {labels},
// each requiring `Authorization: Bearer <token>`. Used by examples/tracker.ts and the tests.
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";

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
