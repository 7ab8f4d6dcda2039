// Writes a contracts folder, a policy folder and a connectors folder for a test server: the
// shipped contracts plus (or instead of) those the test defines with the real ports it listens on.
import { copyFileSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ROOT } from "./local-server.ts";

export function dataDirs(
  extraContracts: Record<string, unknown>,
  policy: unknown,
  connectors: Record<string, unknown> = {},
): { CONTRACTS_DIR: string; POLICY_DIR: string; CONNECTORS_DIR: string } {
  const root = mkdtempSync(join(tmpdir(), "agent-exec-data-"));
  const contracts = join(root, "contracts");
  const policyDir = join(root, "policy");
  mkdirSync(contracts);
  mkdirSync(policyDir);
  for (const name of readdirSync(join(ROOT, "contracts")))
    if (name.endsWith(".json") && !name.endsWith(".schema.json")) copyFileSync(join(ROOT, "contracts", name), join(contracts, name));
  for (const [name, contract] of Object.entries(extraContracts)) writeFileSync(join(contracts, `${name}.json`), JSON.stringify(contract, null, 2));
  writeFileSync(join(policyDir, "tenants.json"), JSON.stringify(policy, null, 2));
  const connectorsDir = join(root, "connectors");
  mkdirSync(connectorsDir);
  for (const [name, connector] of Object.entries(connectors)) writeFileSync(join(connectorsDir, `${name}.json`), JSON.stringify(connector, null, 2));
  return { CONTRACTS_DIR: contracts, POLICY_DIR: policyDir, CONNECTORS_DIR: connectorsDir };
}

/** A read-only, phase-1 contract for a test server: `extra` sets or overrides any field (limits, backpressure, egress…). */
export function readOnlyContract(id: string, tool: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    id,
    version: "1.0.0",
    tool,
    title: id,
    description: `Test contract ${id}.`,
    class: "read-only",
    phase: 1,
    inputSchema: { type: "object" },
    actions: ["read"],
    ...extra,
  };
}
