// Capability contracts: data that every layer reads, so this module depends on no layer.
export {
  ActionSchema,
  CAPABILITY_NAMES,
  type CapabilityName,
  CapabilityNameSchema,
  type Contract,
  ContractSchema,
  contractJsonSchema,
  DATA_CLASSES,
  type DataClass,
  DataClassSchema,
  dataClassRank,
  EGRESS_SECRET_PATTERN,
  type EgressRule,
  EgressRuleSchema,
  type Limits,
  type WorkloadClass,
  WorkloadClassSchema,
} from "./contract-schema.ts";
export { type DataFile, type FileProblem, fieldOf, formatProblems, loadContracts } from "./load-contracts.ts";
