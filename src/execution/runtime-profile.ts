// A contract's runtime profile for one run: the capability bindings its env gets (those
// the contract lists whose actions the granted scope covers), the egress rules its gateway
// enforces, and the destinations the call declared.
import {
  type CapabilityName,
  type Connector,
  type Contract,
  type EgressRule,
  type HttpOperation,
  type McpOperation,
  matchOperations,
  operationAction,
} from "../contracts/index.ts";
import type { Destination } from "./destination.ts";
import type { Via } from "./egress-policy.ts";
import type { RunTrace } from "./trace-context.ts";

/** The actions each capability performs; a capability is bound only if the scope grants one of them. */
export const CAPABILITY_ACTIONS: Record<CapabilityName, readonly string[]> = {
  docs: ["read"],
  tracker: ["tracker.comment", "tracker.label"],
};

/**
 * A connector as a run gets it: where it lives, the operations this run may call (granted,
 * and in scope), and which of them pause the run for an approval of each call (privileged
 * ones, and those the grant's `approve` names).
 */
export type GrantedConnector = { name: string; approve: string[] } & (
  | { kind: "http"; baseUrl: string; operations: Record<string, HttpOperation> }
  /** toolsSha256: the pinned tool list's hash, which the upstream's live list must have. */
  | { kind: "mcp"; url: string; toolsSha256: string; operations: Record<string, McpOperation> }
);

/**
 * A run whose connectors have operations that need approval keeps a journal of its operation
 * calls at the tenant's approval desk, under its task's key (the key a run approval binds):
 * a paused run's retry replays the calls made before the pause, and a call approval binds
 * the task, the operation and the argument digest.
 */
export type CallJournal = {
  taskKey: string;
  requester: string;
  contract: { id: string; version: string; class: string };
  codeSha256: string;
  inputSha256: string;
  policyHash: string;
  dataClass: string;
  team: string | null;
  ttlMs: number;
};

export type RuntimeProfile = {
  capabilities: CapabilityName[];
  connectors: GrantedConnector[];
  rules: EgressRule[];
  scope: string[];
  plan: Destination[] | null;
  /** The trace the run's outbound requests continue (null: they carry none). */
  trace: RunTrace | null;
  /** Set (by the run's steps) when a connector operation of the run needs approval. */
  journal?: CallJournal | null;
  /** The connector operations the call declared (`<connector>.<operation>`, `<connector>.*`), for drift; null: no plan. */
  operationPlan?: string[] | null;
};

export function runtimeProfile(
  contract: Contract,
  scope: readonly string[],
  plan: Destination[] | null,
  trace: RunTrace | null = null,
  connectors: readonly Connector[] = [],
): RuntimeProfile {
  return {
    capabilities: contract.capabilities.filter((name) => CAPABILITY_ACTIONS[name].some((action) => scope.includes(action))),
    connectors: grantedConnectors(contract, scope, connectors),
    rules: contract.egress,
    scope: [...scope],
    plan,
    trace,
  };
}

/** The operations a contract grants whose effect's action (`<connector>.<effect>`) the scope covers; connectors with none are left out. */
function grantedConnectors(contract: Contract, scope: readonly string[], connectors: readonly Connector[]): GrantedConnector[] {
  return contract.connectors.flatMap((grant): GrantedConnector[] => {
    const connector = connectors.find((candidate) => candidate.name === grant.connector);
    if (!connector) return [];
    const names = matchOperations(grant.operations, Object.keys(connector.operations)).filter((name) => {
      const operation = connector.operations[name];
      return operation !== undefined && scope.includes(operationAction(connector.name, operation.effect));
    });
    if (names.length === 0) return [];
    const marked = matchOperations(grant.approve, names);
    const approve = names.filter((name) => connector.operations[name]?.effect === "privileged" || marked.includes(name));
    if (connector.kind === "http") {
      const operations = Object.fromEntries(names.map((name) => [name, connector.operations[name] as HttpOperation]));
      return [{ kind: "http" as const, name: connector.name, approve, baseUrl: connector.baseUrl, operations }];
    }
    const operations = Object.fromEntries(names.map((name) => [name, connector.operations[name] as McpOperation]));
    return [{ kind: "mcp" as const, name: connector.name, approve, url: connector.url, toolsSha256: connector.pinned.sha256, operations }];
  });
}

/** Who a run is, for the gateway and the capabilities to record against. */
export type RunContext = { runId: string; tenant: string; session: string };

/** What bounds a run's egress: its rules, its declared plan (for drift) and how many requests it may send (limits.subRequests). */
export type EgressBounds = { rules: EgressRule[]; plan: Destination[] | null; subRequests: number; trace: RunTrace | null };
export type GatewayProps = RunContext & EgressBounds & { via: Via };
export type CapabilityProps = RunContext & EgressBounds & { scope: string[] };
/** A connector binding's props: the run, its bounds, the one connector with the operations it may call, and the run's call journal if it keeps one. */
export type ConnectorProps = RunContext &
  EgressBounds & {
    connector: GrantedConnector;
    journal: CallJournal | null;
    /** The operations the call declared it will call; null: no plan, so no drift. */
    operationPlan: string[] | null;
    /** The contract's redaction rules: arguments are recorded (and shown to approvers) redacted by them and the built-in detectors. */
    redaction: Array<{ name: string; pattern?: string | undefined; path?: string | undefined }>;
  };

/** What a sandbox host builds a dynamic worker from: its loader and its own entrypoints (ctx.exports). */
export type SandboxBindings = {
  loader: WorkerLoader;
  gateway(props: GatewayProps): Fetcher;
  capability(name: CapabilityName, props: CapabilityProps): Fetcher;
  connector(props: ConnectorProps): Fetcher;
};
