// The contracts the Worker serves, bundled at build time from contracts/*.json
// (see src/local/build-catalog.ts) and validated again on first use.
import generated from "./catalog.generated.json";
import type { Contract } from "./contract-schema.ts";
import { formatProblems, loadContracts } from "./load-contracts.ts";

export type Catalog = { contracts: readonly Contract[]; byTool: ReadonlyMap<string, Contract> };

let cached: Catalog | undefined;

/** Throws (with every file and field named) if the bundled catalog does not validate. */
export function contractCatalog(): Catalog {
  if (cached) return cached;
  const result = loadContracts(generated.files);
  if (!result.ok) throw new Error(`Invalid contracts:\n${formatProblems(result.problems)}`);
  cached = { contracts: result.contracts, byTool: new Map(result.contracts.map((c) => [c.tool, c])) };
  return cached;
}
