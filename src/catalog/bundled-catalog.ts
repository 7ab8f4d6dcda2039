// The contracts and policy bundled into the Worker at build time (src/local/build-catalog.ts
// writes the generated JSON), validated again on first use. Only the Worker's root
// and tests import this; the layers get what they need passed in.
import generatedContracts from "../contracts/catalog.generated.json";
import { type Contract, type DataFile, formatProblems, loadContracts } from "../contracts/index.ts";
import { loadPolicy, type PolicySet } from "../policy/index.ts";
import generatedPolicy from "../policy/policy.generated.json";

export type Catalog = {
  contracts: readonly Contract[];
  byTool: ReadonlyMap<string, Contract>;
  policy: PolicySet;
};

let cached: Catalog | undefined;
const overrides = new Map<string, Catalog>();

/** Throws (naming every file and field) if the bundled files do not validate. */
export function bundledCatalog(): Catalog {
  cached ??= catalogOf(generatedContracts.files, generatedPolicy.files);
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
    const parsed = JSON.parse(override) as { contracts: DataFile[]; policy: DataFile[] };
    catalog = catalogOf(parsed.contracts, parsed.policy);
    overrides.set(override, catalog);
  }
  return catalog;
}

function catalogOf(contractFiles: readonly DataFile[], policyFiles: readonly DataFile[]): Catalog {
  const contracts = loadContracts(contractFiles);
  if (!contracts.ok) throw new Error(`Invalid contracts:\n${formatProblems(contracts.problems)}`);
  const policy = loadPolicy(policyFiles, contracts.contracts);
  if (!policy.ok) throw new Error(`Invalid policy:\n${formatProblems(policy.problems)}`);
  return { contracts: contracts.contracts, byTool: new Map(contracts.contracts.map((c) => [c.tool, c])), policy: policy.policy };
}
