// The small non-MCP routes and the HTTP error mapping.
export { type Authentication, authenticate } from "./authenticate.ts";
export { BENCH_BASELINE_ROUTE, serveBenchBaseline } from "./bench-baseline-route.ts";
export { errorResponse, jsonResponse, unexpectedErrorResponse } from "./error-response.ts";
export { AUDITOR_ROLE, EVIDENCE_ROUTE, mayReadSession, serveEvidence } from "./evidence-route.ts";
