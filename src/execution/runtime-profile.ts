// A contract's runtime profile for one run: the capability bindings its env gets (those
// the contract lists whose actions the granted scope covers), the egress rules its gateway
// enforces, and the destinations the call declared.
import type { CapabilityName, Contract, EgressRule } from "../contracts/index.ts";
import type { Destination } from "./destination.ts";
import type { RunTrace } from "./trace-context.ts";

/** The actions each capability performs; a capability is bound only if the scope grants one of them. */
export const CAPABILITY_ACTIONS: Record<CapabilityName, readonly string[]> = {
  docs: ["read"],
  tracker: ["tracker.comment", "tracker.label"],
};

export type RuntimeProfile = {
  capabilities: CapabilityName[];
  rules: EgressRule[];
  scope: string[];
  plan: Destination[] | null;
  /** The trace the run's outbound requests continue (null: they carry none). */
  trace: RunTrace | null;
};

export function runtimeProfile(contract: Contract, scope: readonly string[], plan: Destination[] | null, trace: RunTrace | null = null): RuntimeProfile {
  return {
    capabilities: contract.capabilities.filter((name) => CAPABILITY_ACTIONS[name].some((action) => scope.includes(action))),
    rules: contract.egress,
    scope: [...scope],
    plan,
    trace,
  };
}

/** Who a run is, for the gateway and the capabilities to record against. */
export type RunContext = { runId: string; tenant: string; session: string };

/** What bounds a run's egress: its rules, its declared plan (for drift) and how many requests it may send (limits.subRequests). */
export type EgressBounds = { rules: EgressRule[]; plan: Destination[] | null; subRequests: number; trace: RunTrace | null };
export type GatewayProps = RunContext & EgressBounds & { via: "code" | CapabilityName };
export type CapabilityProps = RunContext & EgressBounds & { scope: string[] };

/** What a sandbox host builds a dynamic worker from: its loader and its own entrypoints (ctx.exports). */
export type SandboxBindings = {
  loader: WorkerLoader;
  gateway(props: GatewayProps): Fetcher;
  capability(name: CapabilityName, props: CapabilityProps): Fetcher;
};
