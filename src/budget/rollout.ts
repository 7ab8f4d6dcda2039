// Rollback conditions, evaluated: over the window, the figure of the phase's runs and how
// many runs it rests on. Pure; the budget object runs it from its alarm.
import type { RollbackCondition, Rollout } from "./budget-schema.ts";
import type { GovernanceSample } from "./governance.ts";

export type Trip = { phase: number; metric: RollbackCondition["metric"]; value: number; above: number; windowMinutes: number; runs: number };

const FAILED = new Set(["failed", "timed_out", "output_too_large", "egress_denied", "cancelled", "memory_exceeded"]);

/** The figure a condition watches, over the runs of one phase in its window, and its denominator. */
export function conditionFigure(condition: RollbackCondition, runs: readonly GovernanceSample[]): { value: number | null; runs: number } {
  const counted =
    condition.metric === "drift_rate"
      ? runs.filter((r) => r.planned)
      : condition.metric === "failure_rate"
        ? runs.filter((r) => r.decision === "allow" || r.approval === "used")
        : runs;
  const hits =
    condition.metric === "policy_denied_ratio"
      ? counted.filter((r) => r.decision === "deny").length
      : condition.metric === "drift_rate"
        ? counted.filter((r) => r.drifted).length
        : counted.filter((r) => FAILED.has(r.termination)).length;
  return { value: counted.length > 0 ? hits / counted.length : null, runs: counted.length };
}

/** The first condition of each phase (not already rolled back) that trips now. */
export function tripsOf(rollout: Rollout, samples: readonly GovernanceSample[], rolledBack: ReadonlySet<number>, now: number): Trip[] {
  const trips: Trip[] = [];
  for (const [key, phase] of Object.entries(rollout)) {
    const number = Number(key);
    if (!phase || rolledBack.has(number)) continue;
    for (const condition of phase.rollback) {
      const inWindow = samples.filter((s) => s.phase === number && s.at >= now - condition.windowMinutes * 60_000);
      const figure = conditionFigure(condition, inWindow);
      if (figure.value !== null && figure.runs >= condition.minRuns && figure.value > condition.above) {
        trips.push({
          phase: number,
          metric: condition.metric,
          value: Math.round(figure.value * 1000) / 1000,
          above: condition.above,
          windowMinutes: condition.windowMinutes,
          runs: figure.runs,
        });
        break;
      }
    }
  }
  return trips;
}
