// The metrics report in the Prometheus text exposition format (version 0.0.4): gauges over
// the report's window, labelled by tenant, lane, contract, phase and quantile.
import type { Figures } from "../budget/index.ts";
import type { MetricsReport } from "./metrics-report.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

type Labels = Record<string, string>;
type Sample = { labels: Labels; value: number };

const FAMILIES = {
  agent_exec_run_phase_ms: 'Run phase latency over the window, per tenant, lane and contract (contract="*": the whole lane), by quantile.',
  agent_exec_runs: "Calls over the window by what the budget did with them, and runs that completed.",
  agent_exec_budget_max_in_flight: "The tenant's concurrency budget per lane (from its policy).",
  agent_exec_in_flight: "Runs holding a slot now.",
  agent_exec_kept_idle: "Slots kept in reserve by isolates for the tenant's next calls, unused at their last report (they count against the budget).",
  agent_exec_waiting: "Calls waiting for a slot now (delay mode).",
  agent_exec_fairness_share_ratio: "A tenant's share of completed runs over its share of the lane's budget, among tenants with runs in the window.",
  agent_exec_fairness_p95_spread: "The slowest tenant's p95 total latency over the fastest's, per lane.",
  agent_exec_metrics_window_seconds: "The window the gauges cover.",
  agent_exec_governance_ratio:
    'Governance figures over the window per tenant and team (team="*": the tenant): policy_denied, drift, human_override, incident_link.',
} as const;

export function prometheusText(report: MetricsReport): string {
  const families = new Map<keyof typeof FAMILIES, Sample[]>(Object.keys(FAMILIES).map((name) => [name as keyof typeof FAMILIES, []]));
  const add = (name: keyof typeof FAMILIES, labels: Labels, value: number | null) => {
    if (value !== null && Number.isFinite(value)) families.get(name)?.push({ labels, value });
  };
  add("agent_exec_metrics_window_seconds", {}, report.window.ms / 1000);
  for (const [tenant, t] of Object.entries(report.tenants)) {
    for (const lane of ["interactive", "batch"] as const) {
      add("agent_exec_budget_max_in_flight", { tenant, lane }, t.budget[lane].maxInFlight);
      add("agent_exec_in_flight", { tenant, lane }, t.inFlight[lane]);
      add("agent_exec_kept_idle", { tenant, lane }, t.keptIdle[lane]);
      add("agent_exec_waiting", { tenant, lane }, t.waiting[lane]);
      const summary = t.lanes[lane];
      if (!summary) continue;
      const figures: Array<[string, Figures]> = [["*", summary.all], ...Object.entries(summary.contracts)];
      for (const [contract, f] of figures) {
        for (const [phase, stats] of [
          ["queue", f.queueMs],
          ["start", f.startMs],
          ["exec", f.execMs],
          ["total", f.totalMs],
        ] as const) {
          for (const [quantile, value] of [
            ["0.5", stats.p50],
            ["0.95", stats.p95],
            ["0.99", stats.p99],
          ] as const) {
            add("agent_exec_run_phase_ms", { tenant, lane, contract, phase, quantile }, value);
          }
        }
        for (const [outcome, n] of Object.entries(f.runs)) if (outcome !== "total") add("agent_exec_runs", { tenant, lane, contract, outcome }, n);
      }
    }
  }
  for (const [tenant, t] of Object.entries(report.tenants)) {
    for (const [team, g] of [["*", t.governance.all], ...Object.entries(t.governance.teams)] as const) {
      add("agent_exec_governance_ratio", { tenant, team, figure: "policy_denied" }, g.policyDeniedRatio);
      add("agent_exec_governance_ratio", { tenant, team, figure: "drift" }, g.driftRate);
      add("agent_exec_governance_ratio", { tenant, team, figure: "human_override" }, g.overrideFrequency);
      add("agent_exec_governance_ratio", { tenant, team, figure: "incident_link" }, g.incidentLinkRate);
    }
  }
  for (const [lane, f] of Object.entries(report.fairness ?? {})) {
    for (const [tenant, figures] of Object.entries(f.tenants)) add("agent_exec_fairness_share_ratio", { tenant, lane }, figures.shareRatio);
    add("agent_exec_fairness_p95_spread", { lane }, f.p95Spread?.ratio ?? null);
  }
  const lines: string[] = [];
  for (const [name, samples] of families) {
    if (samples.length === 0) continue;
    lines.push(`# HELP ${name} ${FAMILIES[name]}`, `# TYPE ${name} gauge`);
    for (const { labels, value } of samples) lines.push(`${name}${labelText(labels)} ${value}`);
  }
  return `${lines.join("\n")}\n`;
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`).join(",")}}`;
}
