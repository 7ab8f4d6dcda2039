// Server logs go through redaction too: an error message or a stack can carry a secret
// that code threw or an upstream echoed.
import { type Redactor, redactor } from "../redaction/index.ts";

let forLogs: Redactor = redactor();

/** Called once per isolate with the platform's own secret values (see src/index.ts). */
export function redactLogsOf(secrets: readonly string[]): void {
  forLogs = redactor({ secrets });
}

export function logEvent(level: "error" | "warn" | "info", event: Record<string, unknown>): void {
  const line = forLogs.text(JSON.stringify(event)).text;
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
