// Capability contracts: data that every layer reads, so this module depends on no layer.

export { connectorDeclaration, operationDeclaration } from "./connector-declarations.ts";
export {
  type Connector,
  connectorEndpoint,
  connectorJsonSchema,
  connectorVia,
  type Effect,
  type HttpOperation,
  type McpOperation,
  matchOperations,
  type Operation,
  operationAction,
  type PinnedTool,
  pathParameters,
  pinnedTool,
  toolListSha256,
} from "./connector-schema.ts";
export {
  ActionSchema,
  type CapabilityName,
  type Contract,
  ContractSchema,
  contractJsonSchema,
  DATA_CLASSES,
  type DataClass,
  DataClassSchema,
  dataClassRank,
  type EgressRule,
  EgressRuleSchema,
  type WorkloadClass,
} from "./contract-schema.ts";
export { canonicalHostName, isCloudMetadataName } from "./host-name.ts";
export { connectorGrantProblems, loadConnectors } from "./load-connectors.ts";
export { type DataFile, type FileProblem, fieldOf, formatProblems, loadContracts } from "./load-contracts.ts";
export { validatorFor } from "./schema-validator.ts";
