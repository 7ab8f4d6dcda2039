// The small non-MCP routes and the HTTP error mapping.

export {
  APPROVAL_SCRIPT_ROUTE,
  APPROVAL_STYLE_ROUTE,
  APPROVALS_ROUTE,
  serveApproval,
  serveApprovalList,
  serveApprovalPage,
  serveApprovalScript,
  serveApprovalStyle,
} from "./approvals-route.ts";
export { authenticate } from "./authenticate.ts";
export { BATCHES_ROUTE, type BatchDeps, serveBatch, submitBatch } from "./batches-route.ts";
export { BENCH_ROUTES, serveBench } from "./bench-routes.ts";
export { errorResponse, jsonResponse, RESPONSE_MARKER, unexpectedErrorResponse } from "./error-response.ts";
export { serveEvidence } from "./evidence-route.ts";
export { type ExportDeps, serveExport } from "./export-route.ts";
export { INCIDENTS_ROUTE, serveIncidents } from "./incidents-route.ts";
export { JWKS_ROUTE, serveJwks } from "./jwks-route.ts";
export { METRICS_ROUTE, presentsMetricsToken, serveMetrics } from "./metrics-route.ts";
export { servePolicySnapshot } from "./policy-route.ts";
export { RESOURCE_METADATA_ROUTE, resourceMetadataUrl, serveResourceMetadata, withResourceMetadata } from "./resource-metadata-route.ts";
export { ROLLOUT_ROUTE, serveRollout, serveRolloutEnable } from "./rollout-route.ts";
export { STORE_ROUTE, serveStoreItems } from "./store-route.ts";
export { serveTasks, TASKS_ROUTE } from "./tasks-route.ts";
export { serveViewer, VIEWER_ASSETS } from "./viewer-route.ts";
