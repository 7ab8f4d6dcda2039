// Server logs: one JSON line per event, redacted like evidence.
export { logEvent, redactLogsOf } from "./log.ts";
