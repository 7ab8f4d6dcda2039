// Declared destinations (a call's plan) and matching an attempt against them, for drift.
// A destination is "host", "host:port" or "scheme://host[:port]"; host may be "*.suffix".
import { classifyHost } from "./ip-address.ts";

export type Destination = { protocol: string | null; host: string; port: number | null };

export function parseDestination(text: string): Destination | null {
  const match = /^(?:([a-z]+):\/\/)?(\*\.[^:/\s]+|\[[0-9a-fA-F:.]+\]|[^:/\s]+)(?::(\d{1,5}))?\/?$/.exec(text.trim());
  if (!match?.[2]) return null;
  const port = match[3] ? Number(match[3]) : null;
  if (port !== null && (port < 1 || port > 65_535)) return null;
  const host = match[2].startsWith("*.") ? match[2].toLowerCase() : classifyHost(match[2]).canonical;
  return { protocol: match[1] ?? null, host, port };
}

export function withinPlan(plan: readonly Destination[], attempt: { protocol: string; host: string; port: number }): boolean {
  const host = classifyHost(attempt.host).canonical;
  return plan.some(
    (d) =>
      (d.protocol === null || d.protocol === attempt.protocol) &&
      (d.port === null || d.port === attempt.port) &&
      (d.host.startsWith("*.") ? host.endsWith(d.host.slice(1)) && host.length > d.host.length - 1 : d.host === host),
  );
}
