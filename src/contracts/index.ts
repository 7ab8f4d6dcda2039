// Capability contracts: data that every layer reads, so this module depends on no layer.
export { type Catalog, contractCatalog } from "./catalog.ts";
export { type Contract, ContractSchema, contractJsonSchema, type Limits, type WorkloadClass, WorkloadClassSchema } from "./contract-schema.ts";
export { type ContractFile, type ContractProblem, formatProblems, loadContracts } from "./load-contracts.ts";
