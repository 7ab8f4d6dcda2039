// The governance figures of a tenant over a window, per team: how often policy denied a run,
// how often a run's outbound calls strayed from its declared plan, how often a human decided
// an approval request, and how many runs an incident was linked to. Pure; the budget object
// keeps the samples (one per finished run, one per approval decision, one per incident link).

export type GovernanceSample = {
  at: number;
  runId: string;
  /** The team whose grant decided (null when none did: denied before a team matched, or unknown). */
  team: string | null;
  contract: string;
  /** The contract's rollout phase. */
  phase: number;
  decision: "allow" | "deny" | "needs_approval" | null;
  termination: string;
  /** The run declared its outbound destinations (a plan). */
  planned: boolean;
  /** Outbound attempts outside that plan. */
  drifted: boolean;
  /** Where the approval gate stood for this run, if the contract has one. */
  approval: "requested" | "pending" | "used" | "rejected" | null;
};

export type ApprovalDecisionSample = { at: number; team: string | null; verdict: "approved" | "rejected" };

export type GovernanceFigures = {
  runs: number;
  policyDenied: number;
  /** Runs policy denied, over all runs. */
  policyDeniedRatio: number | null;
  planned: number;
  drifted: number;
  /** Runs whose outbound calls left their declared plan, over runs that declared one. */
  driftRate: number | null;
  approvalRequests: number;
  approvalDecisions: { approved: number; rejected: number };
  /** Human decisions (approvals and rejections) over approval requests. */
  overrideFrequency: number | null;
  incidentLinkedRuns: number;
  /** Runs linked to an incident, over all runs. */
  incidentLinkRate: number | null;
};

const ratio = (part: number, whole: number) => (whole > 0 ? Math.round((part / whole) * 1000) / 1000 : null);

export function governanceFigures(
  runs: readonly GovernanceSample[],
  decisions: readonly ApprovalDecisionSample[],
  linked: ReadonlySet<string>,
): GovernanceFigures {
  const policyDenied = runs.filter((r) => r.decision === "deny").length;
  const planned = runs.filter((r) => r.planned).length;
  const drifted = runs.filter((r) => r.planned && r.drifted).length;
  const approvalRequests = runs.filter((r) => r.approval === "requested").length;
  const approved = decisions.filter((d) => d.verdict === "approved").length;
  const rejected = decisions.filter((d) => d.verdict === "rejected").length;
  const incidentLinkedRuns = runs.filter((r) => linked.has(r.runId)).length;
  return {
    runs: runs.length,
    policyDenied,
    policyDeniedRatio: ratio(policyDenied, runs.length),
    planned,
    drifted,
    driftRate: ratio(drifted, planned),
    approvalRequests,
    approvalDecisions: { approved, rejected },
    overrideFrequency: ratio(approved + rejected, approvalRequests),
    incidentLinkedRuns,
    incidentLinkRate: ratio(incidentLinkedRuns, runs.length),
  };
}

/** The tenant's figures, and per team (runs no team decided are under "(none)"). */
export function governanceByTeam(
  runs: readonly GovernanceSample[],
  decisions: readonly ApprovalDecisionSample[],
  linked: ReadonlySet<string>,
): { all: GovernanceFigures; teams: Record<string, GovernanceFigures> } {
  const teamOf = (team: string | null) => team ?? "(none)";
  const names = new Set([...runs.map((r) => teamOf(r.team)), ...decisions.map((d) => teamOf(d.team))]);
  return {
    all: governanceFigures(runs, decisions, linked),
    teams: Object.fromEntries(
      [...names].sort().map((name) => [
        name,
        governanceFigures(
          runs.filter((r) => teamOf(r.team) === name),
          decisions.filter((d) => teamOf(d.team) === name),
          linked,
        ),
      ]),
    ),
  };
}
