// Real upstreams on 127.0.0.1 for egress tests: an HTTP server that records every
// request it receives (and can echo, redirect, or act as the issue tracker), and a TCP
// echo server that counts its connections.
import { createServer as createHttpServer, type IncomingHttpHeaders } from "node:http";
import { createServer as createTcpServer } from "node:net";
import { handleTrackerRequest, type Issue } from "../../examples/local-tracker.ts";

/** One request as the upstream received it; `at` is when its body had arrived (Date.now()). */
export type SeenRequest = { method: string; url: string; headers: IncomingHttpHeaders; body: string; at: number };

export type HttpUpstream = { port: number; seen: SeenRequest[]; close: () => Promise<void> };

/** Routes: /allowed/echo (echoes headers), /allowed/redirect?to=URL (302), /issues/* (examples/local-tracker.ts). */
export async function startHttpUpstream(trackerToken: string): Promise<HttpUpstream> {
  const seen: SeenRequest[] = [];
  const issues = new Map<string, Issue>();
  const server = createHttpServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => (body += chunk));
    request.on("end", () => {
      seen.push({ method: request.method ?? "", url: request.url ?? "", headers: request.headers, body, at: Date.now() });
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
      if (handleTrackerRequest(issues, trackerToken, request, body, response)) return;
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
