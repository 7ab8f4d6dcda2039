// Plain HTTP against a running server, for volume (bursts, benchmarks) where an MCP client
// per call would measure the client: one tools/call as one POST, and a session's whole evidence.

/** The headers of one tools/call POST, as a 2025-era client sends them. */
export function toolCallHeaders(token: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    "content-type": "application/json",
    accept: "application/json, text/event-stream",
    "mcp-protocol-version": "2025-06-18",
  };
}

/** The JSON-RPC body of one tools/call. */
export function toolCallBody(name: string, args: object, id: number): string {
  return JSON.stringify({ jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } });
}

/** An answer's JSON-RPC message (a JSON body or one SSE event), or whatever JSON the body is (an HTTP error's). */
export function answerOf<T = Record<string, unknown>>(text: string): { result?: { structuredContent?: T }; error?: { code: string; message?: string } } | null {
  const json = text.startsWith("{")
    ? text
    : (text
        .split("\n")
        .find((line) => line.startsWith("data: "))
        ?.slice(6) ?? "null");
  return JSON.parse(json);
}

/** One tools/call as a single POST; the tool result's structuredContent (JSON or one SSE event). */
export async function rawToolCall<T = Record<string, unknown>>(mcpUrl: URL | string, token: string, name: string, args: object, id: number): Promise<T> {
  const response = await fetch(mcpUrl, { method: "POST", headers: toolCallHeaders(token), body: toolCallBody(name, args, id) });
  const text = await response.text();
  const structured = answerOf<T>(text)?.result?.structuredContent;
  if (!structured) throw new Error(`tools/call answered ${response.status}: ${text.slice(0, 500)}`);
  return structured;
}

/** Every evidence record of a session, following nextCursor. */
export async function sessionRecords<T = Record<string, unknown>>(baseUrl: string, token: string, session: string): Promise<T[]> {
  const all: T[] = [];
  for (let cursor: number | null = 0; cursor !== null; ) {
    const response = await fetch(`${baseUrl}/v1/sessions/${session}/evidence?limit=500&cursor=${cursor}`, { headers: { authorization: `Bearer ${token}` } });
    const page = (await response.json()) as { records: T[]; nextCursor: number | null };
    all.push(...page.records);
    cursor = page.nextCursor;
  }
  return all;
}
