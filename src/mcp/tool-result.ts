// The one place where run outcomes and platform errors become MCP tool results.
import type { CallToolResult } from "@modelcontextprotocol/server";
import type { PlatformError } from "../errors/index.ts";
import type { RunReport } from "../intent/index.ts";

export function toToolResult({ runId, outcome, policyHash, decision }: RunReport): CallToolResult {
  const envelope = {
    runId,
    termination: outcome.termination,
    policyHash,
    decision: decision && { outcome: decision.outcome, reasons: decision.reasons, dataClass: decision.dataClass },
    logs: outcome.logs.lines,
    logsTruncated: outcome.logs.truncated,
  };
  if (outcome.termination === "completed" && !outcome.error) {
    const structured = { ...envelope, result: outcome.result ?? null };
    return { content: [{ type: "text", text: JSON.stringify(structured) }], structuredContent: structured };
  }
  const error = outcome.error?.toJSON() ?? { code: "internal_error", message: "The run failed.", hint: "Retry." };
  const structured = { ...envelope, error, ...(outcome.stack ? { stack: outcome.stack } : {}) };
  return {
    isError: true,
    content: [{ type: "text", text: errorText(error, runId, outcome.logs.lines.length) }],
    structuredContent: structured,
  };
}

/** A tool error for a call that never became a run (e.g. unauthenticated). */
export function toolError(error: PlatformError): CallToolResult {
  return { isError: true, content: [{ type: "text", text: `${error.code}: ${error.message}\nhint: ${error.hint}` }] };
}

function errorText(error: { code: string; message: string; hint: string }, runId: string, logLines: number): string {
  const logs = logLines > 0 ? `\nconsole: ${logLines} line(s) captured, see structuredContent.logs` : "";
  return `${error.code}: ${error.message}\nhint: ${error.hint}\nrun: ${runId}${logs}`;
}
