// Metrics: derived from the budgets' run samples, never a second source of truth.
export { fairness, type MetricsReport, type TenantMetrics, tenantMetrics } from "./metrics-report.ts";
export { PROMETHEUS_CONTENT_TYPE, prometheusText } from "./prometheus.ts";
