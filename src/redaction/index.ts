// Redaction of secrets before anything reaches evidence, server logs or the approval page.
export { type Redactor, redactedField, redactor } from "./redact.ts";
