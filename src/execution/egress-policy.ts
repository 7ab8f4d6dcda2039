// Decides one outbound attempt against a contract's egress rules. Pure: the gateway
// parses the attempt, this says allow (and which rule, which secret to inject) or deny
// (and why). Private, loopback, link-local and similar addresses and localhost names are
// denied whatever the rules say, unless a rule names that very address or name; cloud
// metadata names are denied always.
import type { CapabilityName, EgressRule } from "../contracts/index.ts";
import { classifyHost, type HostKind } from "./ip-address.ts";

/** Why an attempt was denied. Stable: the code reads it in x-egress-denied, evidence keys on it. */
export const EGRESS_DENIALS = [
  "userinfo_in_url",
  "protocol_not_allowed",
  "address_not_allowed",
  "host_not_allowed",
  "port_not_allowed",
  "method_not_allowed",
  "path_not_allowed",
  "secret_unavailable",
  "malformed_destination",
] as const;
export type EgressDenial = (typeof EGRESS_DENIALS)[number];

/** Who asks the gateway: the code, a capability binding, or a connector binding (`connector:<name>`). */
export type Via = "code" | CapabilityName | `connector:${string}`;

export type EgressAttempt = {
  protocol: string; // "https", "http", "tcp" or whatever else was asked for
  host: string;
  port: number;
  method?: string;
  path?: string;
  /** Who is asking: the sandboxed code itself, one of its capability bindings, or a connector's binding. */
  via: Via;
  userinfo?: boolean;
};

export type EgressVerdict =
  | { allowed: true; rule: number; inject: EgressRule["inject"] | undefined; host: HostKind }
  | { allowed: false; reason: EgressDenial; host: HostKind | null };

const DEFAULT_PORTS: Record<string, number> = { https: 443, http: 80 };
const STAGES: EgressDenial[] = ["host_not_allowed", "port_not_allowed", "method_not_allowed", "path_not_allowed"];

export function decideEgress(attempt: EgressAttempt, rules: readonly EgressRule[]): EgressVerdict {
  if (attempt.userinfo) return { allowed: false, reason: "userinfo_in_url", host: null };
  if (!["https", "http", "tcp"].includes(attempt.protocol)) return { allowed: false, reason: "protocol_not_allowed", host: null };
  if (!attempt.host || !Number.isInteger(attempt.port) || attempt.port < 1 || attempt.port > 65_535) {
    return { allowed: false, reason: "malformed_destination", host: null };
  }
  const host = classifyHost(attempt.host);
  // A cloud metadata service is never reachable, whatever the rules say (no rule may name one).
  if (host.kind === "name" && host.metadata) return { allowed: false, reason: "address_not_allowed", host };
  const sensitive = host.kind === "name" ? host.localhost : host.class !== "public";

  // How far each applicable rule got; the deepest failure is the most useful reason.
  let furthest = -1;
  for (const [index, rule] of rules.entries()) {
    if (rule.protocol !== attempt.protocol) continue;
    if ((rule.capability ?? "code") !== attempt.via) continue;
    const literal = classifyHost(rule.host).canonical === host.canonical && !rule.host.startsWith("*.");
    if (!literal && (sensitive || !matchesWildcard(rule.host, host))) continue;
    furthest = Math.max(furthest, 0);
    if (!(rule.ports ?? [DEFAULT_PORTS[rule.protocol] ?? -1]).includes(attempt.port)) continue;
    furthest = Math.max(furthest, 1);
    if (rule.protocol !== "tcp") {
      if (!(rule.methods ?? ["GET", "HEAD"]).includes(String(attempt.method).toUpperCase() as never)) continue;
      furthest = Math.max(furthest, 2);
      if (rule.paths && !pathAllowed(attempt.path ?? "/", rule.paths)) continue;
    }
    return { allowed: true, rule: index, inject: rule.inject, host };
  }
  if (furthest < 0 && sensitive) return { allowed: false, reason: "address_not_allowed", host };
  return { allowed: false, reason: STAGES[furthest + 1] ?? "host_not_allowed", host };
}

/** An exact name, or `*.suffix` for any name below the suffix (not the suffix itself); never an IP literal. */
function matchesWildcard(pattern: string, host: HostKind): boolean {
  if (host.kind !== "name") return false;
  if (!pattern.startsWith("*.")) return pattern === host.canonical;
  return host.canonical.endsWith(pattern.slice(1)) && host.canonical.length > pattern.length - 1;
}

/**
 * A path is allowed if it starts with one of the prefixes (write "/issues/" to mean
 * "under /issues") and cannot be decoded into something else upstream: encoded dots,
 * slashes and backslashes (and raw backslashes) are refused.
 */
function pathAllowed(path: string, prefixes: readonly string[]): boolean {
  if (/%2e|%2f|%5c|\\/i.test(path)) return false;
  return prefixes.some((prefix) => path.startsWith(prefix));
}
