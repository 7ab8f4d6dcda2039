// GET /v1/metrics as data: each tenant's budget, what is in flight and waiting, and per lane
// and contract the p50/p95/p99 of queue wait, isolate start, execution and total (never one
// blended number); plus, across tenants, the fairness figures of the window.
import type { Budget, Figures, GovernanceFigures, LaneSummary } from "../budget/index.ts";

export type TenantMetrics = {
  budget: Budget;
  inFlight: Record<"interactive" | "batch", number>;
  /** Slots isolates keep in reserve for the tenant's next calls, unused at their last report (they count against the budget). */
  keptIdle: Record<"interactive" | "batch", number>;
  waiting: Record<"interactive" | "batch", number>;
  lanes: Partial<Record<"interactive" | "batch", { all: Figures; contracts: Record<string, Figures> }>>;
  /** Policy-denied ratio, drift rate, human override frequency, incident link rate: for the tenant and per team. */
  governance: { all: GovernanceFigures; teams: Record<string, GovernanceFigures> };
};

export type LaneFairness = {
  /** Per tenant with runs in the window: its share of completed runs against its share of the lane's budget. */
  tenants: Record<string, { completed: number; completedShare: number; budgetShare: number; shareRatio: number | null; p95TotalMs: number | null }>;
  /** Slowest tenant's p95 total latency over the fastest's; null with fewer than two tenants with runs. */
  p95Spread: { ratio: number; slowest: string; fastest: string } | null;
};

export type MetricsReport = {
  window: { ms: number; from: string; to: string };
  tenants: Record<string, TenantMetrics>;
  fairness: Partial<Record<"interactive" | "batch", LaneFairness>> | null;
};

export function tenantMetrics(
  budget: Budget,
  measured: { inFlight: TenantMetrics["inFlight"]; keptIdle: TenantMetrics["keptIdle"]; waiting: TenantMetrics["waiting"]; lanes: LaneSummary[] },
  governance: TenantMetrics["governance"],
): TenantMetrics {
  return {
    budget,
    governance,
    inFlight: measured.inFlight,
    keptIdle: measured.keptIdle,
    waiting: measured.waiting,
    lanes: Object.fromEntries(measured.lanes.map((l) => [l.lane, { all: l.all, contracts: l.contracts }])),
  };
}

/** Fairness over the tenants given (only those with runs in the window count). */
export function fairness(tenants: Record<string, TenantMetrics>): NonNullable<MetricsReport["fairness"]> {
  const result: NonNullable<MetricsReport["fairness"]> = {};
  for (const lane of ["interactive", "batch"] as const) {
    const active = Object.entries(tenants).filter(([, t]) => (t.lanes[lane]?.all.runs.total ?? 0) > 0);
    if (active.length === 0) continue;
    const completedTotal = active.reduce((sum, [, t]) => sum + (t.lanes[lane]?.all.runs.completed ?? 0), 0);
    const budgetTotal = active.reduce((sum, [, t]) => sum + t.budget[lane].maxInFlight, 0);
    const perTenant: LaneFairness["tenants"] = {};
    for (const [name, t] of active) {
      const completed = t.lanes[lane]?.all.runs.completed ?? 0;
      const completedShare = completedTotal > 0 ? completed / completedTotal : 0;
      const budgetShare = t.budget[lane].maxInFlight / budgetTotal;
      perTenant[name] = {
        completed,
        completedShare: round(completedShare),
        budgetShare: round(budgetShare),
        shareRatio: completedTotal > 0 ? round(completedShare / budgetShare) : null,
        p95TotalMs: t.lanes[lane]?.all.totalMs.p95 ?? null,
      };
    }
    const timed = Object.entries(perTenant).filter(
      (entry): entry is [string, (typeof perTenant)[string] & { p95TotalMs: number }] => entry[1].p95TotalMs !== null,
    );
    timed.sort((a, b) => a[1].p95TotalMs - b[1].p95TotalMs);
    const fastest = timed[0];
    const slowest = timed.at(-1);
    result[lane] = {
      tenants: perTenant,
      p95Spread:
        fastest && slowest && timed.length >= 2 && fastest[1].p95TotalMs > 0
          ? { ratio: round(slowest[1].p95TotalMs / fastest[1].p95TotalMs), slowest: slowest[0], fastest: fastest[0] }
          : null,
    };
  }
  return result;
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
