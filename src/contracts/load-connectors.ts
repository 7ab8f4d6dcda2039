// Parses connector files into Connectors (an MCP connector's operations take their schemas
// from its pinned tools), or says exactly which file and field is wrong; and checks what
// contracts grant of them. Used at build (node), at start (node) and when the
// Worker first serves (workerd), like the contracts.

import { type Connector, ConnectorSchema, connectorEndpoint, connectorVia, matchOperations, operationAction, resolveConnector } from "./connector-schema.ts";
import type { Contract } from "./contract-schema.ts";
import { type DataFile, type FileProblem, fieldOf } from "./load-contracts.ts";

export type ConnectorLoadResult = { ok: true; connectors: Connector[] } | { ok: false; problems: FileProblem[] };

export function loadConnectors(files: readonly DataFile[]): ConnectorLoadResult {
  const problems: FileProblem[] = [];
  const connectors: Connector[] = [];
  // two names that differ only in case would share their policy actions (<name>.read ...)
  const seen = new Map<string, string>();
  for (const { file, json } of files) {
    const parsed = ConnectorSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ file, field: fieldOf(issue), message: issue.message });
      continue;
    }
    const owner = seen.get(parsed.data.name.toLowerCase());
    if (owner)
      problems.push({ file, field: "name", message: `duplicate connector name "${parsed.data.name}" (also in ${owner}; names are compared without case)` });
    seen.set(parsed.data.name.toLowerCase(), file);
    connectors.push(resolveConnector(parsed.data));
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, connectors };
}

/**
 * What each contract grants of the connectors must exist and be grantable: a known connector,
 * patterns that select at least one operation, the policy actions of their effects declared
 * in the contract's `actions` (so a grant's scope can select them), `approve` patterns that
 * select granted operations, and an egress rule that lets the
 * connector's requests reach its host.
 */
export function connectorGrantProblems(
  contracts: readonly Contract[],
  connectors: readonly Connector[],
  fileOf: (contract: Contract) => string,
): FileProblem[] {
  const problems: FileProblem[] = [];
  for (const contract of contracts) {
    contract.connectors.forEach((grant, index) => {
      const file = fileOf(contract);
      const field = `connectors.${index}`;
      const connector = connectors.find((candidate) => candidate.name === grant.connector);
      if (!connector) {
        problems.push({ file, field: `${field}.connector`, message: `no connector "${grant.connector}" in connectors/` });
        return;
      }
      const names = Object.keys(connector.operations);
      for (const pattern of grant.operations) {
        if (matchOperations([pattern], names).length === 0) {
          problems.push({ file, field: `${field}.operations`, message: `"${pattern}" selects no operation of ${connector.name} (${names.join(", ")})` });
        }
      }
      const granted = matchOperations(grant.operations, names);
      for (const pattern of grant.approve) {
        if (matchOperations([pattern], granted).length === 0) {
          problems.push({ file, field: `${field}.approve`, message: `"${pattern}" selects no operation this grant grants (${granted.join(", ")})` });
        }
      }
      const effects = new Set(granted.map((name) => connector.operations[name]?.effect ?? "read"));
      for (const effect of effects) {
        const action = operationAction(connector.name, effect);
        if (!contract.actions.includes(action)) {
          problems.push({
            file,
            field: "actions",
            message: `grants ${effect} operations of ${connector.name}, so it must declare the action "${action}" (a grant's scope selects it)`,
          });
        }
      }
      // every granted operation must pass one rule scoped to the connector: host, protocol, port, method and path
      const base = new URL(connectorEndpoint(connector));
      const via = connectorVia(connector.name);
      const protocol = base.protocol.slice(0, -1);
      const port = Number(base.port || (protocol === "https" ? 443 : 80));
      for (const name of granted) {
        const operation = connector.kind === "http" ? connector.operations[name] : undefined;
        if (connector.kind === "http" && !operation) continue;
        // an MCP server is one endpoint, reached with POST (the binding never opens its GET stream)
        const method = operation?.method ?? "POST";
        const fixedPath = operation ? new URL(operation.path.split("{")[0] ?? "", base).pathname : base.pathname;
        const passes = contract.egress.some(
          (rule) =>
            rule.capability === via &&
            rule.protocol === protocol &&
            (rule.host === base.hostname || (rule.host.startsWith("*.") && base.hostname.endsWith(rule.host.slice(1)))) &&
            (rule.ports ?? [protocol === "https" ? 443 : 80]).includes(port) &&
            (rule.methods ?? ["GET", "HEAD"]).includes(method) &&
            (!rule.paths || rule.paths.some((prefix) => fixedPath.startsWith(prefix))),
        );
        if (!passes) {
          problems.push({
            file,
            field: "egress",
            message: `no egress rule with "capability": "${via}" lets ${connector.name}.${name} (${method} ${base.origin}${fixedPath}…) out (scoped to the connector, so the code's own fetch() never gets its credential)`,
          });
        }
      }
    });
  }
  return problems;
}
