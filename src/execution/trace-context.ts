// W3C Trace Context for a run: the caller's `traceparent` (from the MCP request's `_meta`
// or its HTTP header) is continued, or a fresh trace is started; the run's outbound
// requests carry it onward, each as a new span of the run's trace.

/** A run's place in a trace: the trace it belongs to, the caller's span (null when the run started the trace), sampling. */
export type RunTrace = { traceId: string; parentSpanId: string | null; sampled: boolean };

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;

/** Continues a valid `traceparent` (version 00, non-zero ids), or starts a new sampled trace. */
export function runTrace(traceparent: unknown): RunTrace {
  const match = typeof traceparent === "string" ? TRACEPARENT.exec(traceparent.trim().toLowerCase()) : null;
  const [, traceId, parentSpanId, flags] = match ?? [];
  if (traceId && parentSpanId && flags && !/^0+$/.test(traceId) && !/^0+$/.test(parentSpanId)) {
    return { traceId, parentSpanId, sampled: (Number.parseInt(flags, 16) & 1) === 1 };
  }
  return { traceId: randomHex(16), parentSpanId: null, sampled: true };
}

/** The `traceparent` one outbound request of the run carries: the run's trace, a span of its own. */
export function outboundTraceparent(trace: RunTrace): string {
  return `00-${trace.traceId}-${randomHex(8)}-${trace.sampled ? "01" : "00"}`;
}

function randomHex(bytes: number): string {
  return [...crypto.getRandomValues(new Uint8Array(bytes))].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}
