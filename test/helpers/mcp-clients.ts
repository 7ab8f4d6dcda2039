// The two real MCP clients the suite speaks with: the 2025-era SDK most desktop
// and IDE clients embed, and the current SDK pinned to the 2026-07-28 revision.
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport as TransportV1 } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

export type ToolCallResult = {
  isError?: boolean;
  content: Array<{ type: string; text?: string }>;
  structuredContent?: Record<string, unknown>;
};
export type ListedTool = {
  name: string;
  title?: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  outputSchema?: Record<string, unknown>;
  annotations?: Record<string, unknown>;
};

export type McpSession = {
  listTools(): Promise<ListedTool[]>;
  callTool(name: string, args: Record<string, unknown>): Promise<ToolCallResult>;
  close(): Promise<void>;
};

export const CLIENT_KINDS = ["sdk-1.32 (2025-era)", "client-2.4 (2026-07-28)"] as const;
export type ClientKind = (typeof CLIENT_KINDS)[number];

function headers(token: string | undefined): RequestInit {
  return token ? { headers: { authorization: `Bearer ${token}` } } : {};
}

export async function connectClient(kind: ClientKind, url: URL, token?: string): Promise<McpSession> {
  if (kind === "sdk-1.32 (2025-era)") {
    const client = new ClientV1({ name: "agent-exec-tests", version: "1.0.0" });
    await client.connect(new TransportV1(url, { requestInit: headers(token) }));
    return {
      listTools: async () => (await client.listTools()).tools as ListedTool[],
      callTool: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolCallResult,
      close: () => client.close(),
    };
  }
  const client = new ClientV2({ name: "agent-exec-tests", version: "2.0.0" }, { versionNegotiation: { mode: { pin: "2026-07-28" } } });
  await client.connect(new TransportV2(url, { requestInit: headers(token) }));
  return {
    listTools: async () => (await client.listTools()).tools as ListedTool[],
    callTool: async (name, args) => (await client.callTool({ name, arguments: args })) as ToolCallResult,
    close: () => client.close(),
  };
}

/** The error code of a tool error result (from structuredContent, else the text's first word). */
export function errorCode(result: ToolCallResult): string | undefined {
  const structured = result.structuredContent?.error as { code?: string } | undefined;
  return structured?.code ?? result.content[0]?.text?.split(":")[0];
}

/** The structured error of a tool error result; fails the test when there is none. */
export function errorOf(result: ToolCallResult): { code: string; message: string; hint: string } {
  const error = result.structuredContent?.error as { code: string; message: string; hint: string } | undefined;
  if (!error) throw new Error(`not a structured tool error: ${JSON.stringify(result)}`);
  return error;
}
