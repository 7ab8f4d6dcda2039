// GET /v1/metrics: latency percentiles per phase, per contract and per tenant, outcome counts
// and fairness over a window, as JSON or (Accept: text/plain) Prometheus text. Two views:
// the platform's (bearer METRICS_TOKEN: every tenant, and the fairness figures across them)
// and a tenant auditor's (a token with the auditor role: that tenant only).
import { z } from "zod";
import { budgetFor, DEFAULT_BUDGET, SAMPLE_RETENTION_MS, type SlotReserve, type TenantBudget } from "../budget/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { fairness, type MetricsReport, PROMETHEUS_CONTENT_TYPE, prometheusText, tenantMetrics } from "../metrics/index.ts";
import type { PolicySet } from "../policy/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";
import { AUDITOR_ROLE } from "./evidence-route.ts";

export const METRICS_ROUTE = "/v1/metrics";
const DEFAULT_WINDOW_MS = 5 * 60 * 1000;

export type MetricsAccess = { kind: "platform" } | { kind: "tenant"; identity: Identity };

const Duration = z
  .string()
  .regex(/^\d+(ms|s|m|h)?$/, "a duration such as 30s, 5m, 1h or 60000 (ms)")
  .transform((text) => {
    const [, n = "0", unit = "ms"] = /^(\d+)(ms|s|m|h)?$/.exec(text) ?? [];
    return Number(n) * { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[unit as "ms" | "s" | "m" | "h"];
  })
  .pipe(z.number().int().min(1_000).max(SAMPLE_RETENTION_MS));
const QuerySchema = z.object({ window: Duration.optional(), tenant: z.string().min(1).max(128).optional(), format: z.enum(["json", "prometheus"]).optional() });

/** True when the request presents the platform's metrics token (compared in constant time). */
export function presentsMetricsToken(request: Request, token: string | null): boolean {
  const presented = /^Bearer (.+)$/.exec(request.headers.get("authorization") ?? "")?.[1];
  if (!token || !presented) return false;
  const a = new TextEncoder().encode(presented);
  const b = new TextEncoder().encode(token);
  if (a.byteLength !== b.byteLength) return false;
  let difference = 0;
  for (let i = 0; i < a.byteLength; i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

export async function serveMetrics(
  request: Request,
  access: MetricsAccess,
  deps: { budgets: DurableObjectNamespace<TenantBudget>; policy: PolicySet; leases: SlotReserve },
): Promise<Response> {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "Metrics are read with GET."), { allow: "GET, HEAD" });
  }
  if (access.kind === "tenant" && !access.identity.roles.includes(AUDITOR_ROLE)) {
    return errorResponse(
      new PlatformError("forbidden", `Metrics need the ${AUDITOR_ROLE} role (a tenant's own figures) or the platform's METRICS_TOKEN (every tenant).`, {
        scope: [AUDITOR_ROLE],
      }),
    );
  }
  const query = QuerySchema.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!query.success) {
    const issue = query.error.issues[0];
    return errorResponse(
      new PlatformError("bad_request", `Query parameter ${String(issue?.path[0])} is invalid: ${issue?.message}.`, {
        hint: "Use ?window=30s|5m|1h (1 s to 24 h), ?tenant=<id> (platform view), ?format=json|prometheus.",
      }),
    );
  }
  const windowMs = query.data.window ?? DEFAULT_WINDOW_MS;
  const asked = access.kind === "platform" ? query.data.tenant : undefined;
  // A tenant is one the policy names or one the platform has figures of; any other name is not a tenant.
  if (asked !== undefined && !Object.hasOwn(deps.policy.tenants, asked) && !(await budgetFor(deps.budgets, asked).seen())) {
    return errorResponse(
      new PlatformError("not_found", `No tenant ${JSON.stringify(asked.slice(0, 64))}: the policy names none, and no figures of one are kept.`, {
        hint: `The policy's tenants: ${Object.keys(deps.policy.tenants).sort().join(", ")}. Leave out ?tenant for all of them.`,
      }),
    );
  }
  const names =
    access.kind === "tenant" ? [access.identity.tenant] : query.data.tenant !== undefined ? [query.data.tenant] : Object.keys(deps.policy.tenants).sort();
  const to = Date.now();
  const measured = await Promise.all(
    names.map(async (name) => {
      // this isolate's buffered figures and idle kept slots first (other isolates report within SLOT_RESERVE_FRESH_MS)
      await deps.leases.flush(name);
      const budget = budgetFor(deps.budgets, name);
      const [figures, governance] = await Promise.all([budget.metrics(windowMs), budget.governance(windowMs)]);
      return [name, figures, governance] as const;
    }),
  );
  const tenants = Object.fromEntries(
    measured.map(([name, m, g]) => [
      name,
      tenantMetrics(Object.hasOwn(deps.policy.tenants, name) ? (deps.policy.tenants[name]?.budget ?? DEFAULT_BUDGET) : DEFAULT_BUDGET, m, g),
    ]),
  );
  const report: MetricsReport = {
    window: { ms: windowMs, from: new Date(to - windowMs).toISOString(), to: new Date(to).toISOString() },
    tenants,
    // comparing tenants is the platform's business; a tenant sees only its own figures
    fairness: access.kind === "platform" && query.data.tenant === undefined ? fairness(tenants) : null,
  };
  const prometheus = query.data.format === "prometheus" || (query.data.format === undefined && wantsText(request));
  return prometheus
    ? new Response(prometheusText(report), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE, "cache-control": "no-store" } })
    : jsonResponse(report);
}

function wantsText(request: Request): boolean {
  const accept = request.headers.get("accept") ?? "";
  return /\btext\/plain\b/.test(accept) && !/\bapplication\/json\b/.test(accept);
}
