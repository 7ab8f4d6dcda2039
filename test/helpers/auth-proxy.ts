// A bridge of the kind people put in front of a client that cannot set a header (mcp-remote
// with --header does this): it adds `Authorization: Bearer <token>` to every request and
// passes everything else through untouched, the Host and Origin headers and streamed answers
// included, so what the server sees is the client's own request plus a token.
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export type AuthProxy = { url: (path: string) => URL; close: () => Promise<void> };

export async function authenticatingProxy(target: string, token: string): Promise<AuthProxy> {
  const upstream = new URL(target);
  const server: Server = createServer((incoming, outgoing) => {
    const forwarded = httpRequest(
      {
        hostname: upstream.hostname,
        port: upstream.port,
        method: incoming.method,
        path: incoming.url,
        headers: { ...incoming.headers, authorization: `Bearer ${token}` },
      },
      (answer) => {
        outgoing.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(outgoing);
      },
    );
    forwarded.on("error", (error) => {
      if (!outgoing.headersSent) outgoing.writeHead(502, { "content-type": "text/plain" });
      outgoing.end(String(error));
    });
    incoming.pipe(forwarded);
  });
  await new Promise<void>((listening) => server.listen(0, "127.0.0.1", listening));
  const { port } = server.address() as AddressInfo;
  return {
    url: (path) => new URL(path, `http://127.0.0.1:${port}`),
    close: () => new Promise((closed) => server.close(() => closed())),
  };
}
