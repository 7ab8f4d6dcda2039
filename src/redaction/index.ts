// Redaction of secrets before anything reaches evidence, server logs or the approval page.
export { logEvent, redactLogsOf } from "./log.ts";
export { DETECTORS, type Detector, type Redactor, redactedField, redactor } from "./redact.ts";
