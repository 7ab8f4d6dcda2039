// The contracts and policy bundled into the Worker at build time (src/local/build-catalog.ts
// writes the generated JSON), validated again on first use. Only the Worker's root
// and tests import this; the layers get what they need passed in.
import generatedContracts from "../contracts/catalog.generated.json";
import { type Contract, formatProblems, loadContracts } from "../contracts/index.ts";
import { loadPolicy, type PolicySet } from "../policy/index.ts";
import generatedPolicy from "../policy/policy.generated.json";

export type Catalog = {
  contracts: readonly Contract[];
  byTool: ReadonlyMap<string, Contract>;
  policy: PolicySet;
};

let cached: Catalog | undefined;

/** Throws (naming every file and field) if the bundled files do not validate. */
export function bundledCatalog(): Catalog {
  if (cached) return cached;
  const contracts = loadContracts(generatedContracts.files);
  if (!contracts.ok) throw new Error(`Invalid contracts:\n${formatProblems(contracts.problems)}`);
  const policy = loadPolicy(generatedPolicy.files, contracts.contracts);
  if (!policy.ok) throw new Error(`Invalid policy:\n${formatProblems(policy.problems)}`);
  cached = { contracts: contracts.contracts, byTool: new Map(contracts.contracts.map((c) => [c.tool, c])), policy: policy.policy };
  return cached;
}
