// Real upstreams on 127.0.0.1 for egress tests: an HTTP server that records every
// request it receives (and can echo, redirect, or act as the issue tracker), and a TCP
// echo server that counts its connections.
import { createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { createServer as createTcpServer } from "node:net";

export type SeenRequest = { method: string; url: string; headers: IncomingHttpHeaders; body: string };

export type HttpUpstream = { port: number; seen: SeenRequest[]; close: () => Promise<void> };

/** Routes: /allowed/echo (echoes headers), /allowed/redirect?to=URL (302), /issues/* (a tracker needing a bearer token). */
export async function startHttpUpstream(trackerToken: string): Promise<HttpUpstream> {
  const seen: SeenRequest[] = [];
  const issues = new Map<string, { id: string; comments: string[]; labels: string[] }>();
  const server = createHttpServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body });
      const url = new URL(request.url ?? "/", "http://upstream");
      const json = (status: number, value: unknown) => {
        const text = JSON.stringify(value);
        response.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
        response.end(text);
      };
      if (url.pathname === "/allowed/echo") return json(200, { method: request.method, headers: request.headers, body });
      if (url.pathname === "/allowed/redirect") {
        response.writeHead(302, { location: url.searchParams.get("to") ?? "/" });
        return response.end();
      }
      const issue = /^\/issues\/([^/]+)(?:\/(comments|labels))?$/.exec(url.pathname);
      if (issue?.[1]) {
        if (request.headers.authorization !== `Bearer ${trackerToken}`) return json(401, { error: "unauthorized" });
        const record = issues.get(issue[1]) ?? { id: issue[1], comments: [], labels: [] };
        issues.set(issue[1], record);
        if (!issue[2] && request.method === "GET") return json(200, record);
        const payload = JSON.parse(body || "{}") as { body?: string; labels?: string[] };
        if (issue[2] === "comments" && request.method === "POST") {
          record.comments.push(String(payload.body));
          return json(201, { id: record.comments.length });
        }
        if (issue[2] === "labels" && request.method === "POST") {
          record.labels.push(...(payload.labels ?? []));
          return json(200, { labels: record.labels });
        }
      }
      return json(404, { error: "not found" });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("no port");
  return { port: address.port, seen, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

export type TcpEcho = { port: number; connections: () => number; close: () => Promise<void> };

export async function startTcpEcho(): Promise<TcpEcho> {
  let connections = 0;
  const server = createTcpServer((socket) => {
    connections++;
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address !== "object") throw new Error("no port");
  return { port: address.port, connections: () => connections, close: () => new Promise((resolve) => server.close(() => resolve())) };
}
