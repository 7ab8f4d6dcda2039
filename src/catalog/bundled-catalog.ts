// The contracts and policy bundled into the Worker at build time (src/local/build-catalog.ts
// writes the generated JSON), validated again on first use. Only the Worker's root
// and tests import this; the layers get what they need passed in.
import generatedContracts from "../contracts/catalog.generated.json";
import generatedConnectors from "../contracts/connectors.generated.json";
import { type Connector, type Contract, connectorGrantProblems, type DataFile, formatProblems, loadConnectors, loadContracts } from "../contracts/index.ts";
import { loadPolicy, type PolicySet } from "../policy/index.ts";
import generatedPolicy from "../policy/policy.generated.json";

export type Catalog = {
  contracts: readonly Contract[];
  /** The organisation's APIs as typed operations contracts grant (connectors/). */
  connectors: readonly Connector[];
  byTool: ReadonlyMap<string, Contract>;
  policy: PolicySet;
};

let cached: Catalog | undefined;
const overrides = new Map<string, Catalog>();

/** Throws (naming every file and field) if the bundled files do not validate. */
export function bundledCatalog(): Catalog {
  cached ??= catalogOf(generatedContracts.files, generatedPolicy.files, generatedConnectors.files);
  return cached;
}

/**
 * The catalog the local runner hands over (CATALOG_OVERRIDE) when it serves other folders
 * than the bundled ones (CONTRACTS_DIR, POLICY_DIR); the bundled one otherwise.
 */
export function catalogFor(override: string | null): Catalog {
  if (override === null) return bundledCatalog();
  let catalog = overrides.get(override);
  if (!catalog) {
    const parsed = JSON.parse(override) as { contracts: DataFile[]; policy: DataFile[]; connectors?: DataFile[] };
    catalog = catalogOf(parsed.contracts, parsed.policy, parsed.connectors ?? []);
    overrides.set(override, catalog);
  }
  return catalog;
}

function catalogOf(contractFiles: readonly DataFile[], policyFiles: readonly DataFile[], connectorFiles: readonly DataFile[]): Catalog {
  const contracts = loadContracts(contractFiles);
  if (!contracts.ok) throw new Error(`Invalid contracts:\n${formatProblems(contracts.problems)}`);
  const connectors = loadConnectors(connectorFiles);
  if (!connectors.ok) throw new Error(`Invalid connectors:\n${formatProblems(connectors.problems)}`);
  const grants = connectorGrantProblems(contracts.contracts, connectors.connectors, (contract) => contract.id);
  if (grants.length > 0) throw new Error(`Invalid connector grants:\n${formatProblems(grants)}`);
  const policy = loadPolicy(policyFiles, contracts.contracts);
  if (!policy.ok) throw new Error(`Invalid policy:\n${formatProblems(policy.problems)}`);
  return {
    contracts: contracts.contracts,
    connectors: connectors.connectors,
    byTool: new Map(contracts.contracts.map((c) => [c.tool, c])),
    policy: policy.policy,
  };
}
