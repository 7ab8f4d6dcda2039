// The one place where run outcomes and platform errors become MCP tool results.
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { PlatformError } from "../errors/index.ts";
import { type RunReport, runEnvelope } from "../intent/index.ts";

export function toToolResult(report: RunReport): CallToolResult {
  const envelope = runEnvelope(report);
  if (!envelope.error) return { content: [{ type: "text", text: JSON.stringify(envelope) }], structuredContent: envelope };
  const { error } = envelope;
  const logs = envelope.logs.length > 0 ? `\nconsole: ${envelope.logs.length} line(s) captured, see structuredContent.logs` : "";
  return {
    isError: true,
    content: [{ type: "text", text: `${error.code}: ${error.message}\nhint: ${error.hint}\nrun: ${envelope.runId}${logs}` }],
    structuredContent: envelope,
  };
}

/** A tool error for a call that never became a run (e.g. unauthenticated). */
export function toolError(error: PlatformError): CallToolResult {
  return { isError: true, content: [{ type: "text", text: `${error.code}: ${error.message}\nhint: ${error.hint}` }] };
}
