// Requests to the Worker under test, through its real fetch handler inside workerd.
import { exports } from "cloudflare:workers";
import { bearer } from "./tokens.ts";

export const BASE = "http://127.0.0.1:8787";
/** Real HTTP always carries Host; a service-binding fetch in workerd does not. */
const HOST = { host: "127.0.0.1:8787" };
export const worker = () => exports.default;

export function rpc(method: string, params: object = {}, id = 1): string {
  return JSON.stringify({ jsonrpc: "2.0", id, method, params });
}

export async function mcp(body: string, headers: HeadersInit = {}): Promise<Response> {
  return await worker().fetch(`${BASE}/mcp`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18", ...HOST, ...headers },
    body,
  });
}

/** One tools/call with a bearer token; the JSON-RPC result (the tool result). */
export async function callTool(token: string, name: string, args: object): Promise<{ isError?: boolean; structuredContent?: Record<string, unknown> }> {
  const response = await mcp(rpc("tools/call", { name, arguments: args }), bearer(token));
  const text = await response.text();
  // a JSON response, or one SSE event carrying it
  const json = text.startsWith("{")
    ? text
    : (text
        .split("\n")
        .find((line) => line.startsWith("data: "))
        ?.slice(6) ?? "null");
  return (JSON.parse(json) as { result: { isError?: boolean; structuredContent?: Record<string, unknown> } }).result;
}

export async function getJson(path: string, token?: string): Promise<{ status: number; body: unknown }> {
  const response = await worker().fetch(`${BASE}${path}`, { headers: token ? bearer(token) : {} });
  return { status: response.status, body: await response.json() };
}
