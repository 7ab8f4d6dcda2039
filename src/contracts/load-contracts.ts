// Parses contract files into Contracts, or says exactly which file and field is wrong.
// Used at build (node), at start (node) and when the Worker first serves (workerd).
import type { z } from "zod";
import { type Contract, ContractSchema, DATA_CLASSES } from "./contract-schema.ts";

/** A JSON data file (a contract, a policy file) as read from disk or bundled. */
export type DataFile = { file: string; json: unknown };

/** What is wrong with a data file, precisely enough to fix it. */
export type FileProblem = { file: string; field: string; message: string };

export type LoadResult = { ok: true; contracts: Contract[] } | { ok: false; problems: FileProblem[] };

export function fieldOf(issue: z.core.$ZodIssue, prefix: readonly PropertyKey[] = []): string {
  const path = [...prefix, ...issue.path];
  return path.length === 0 ? "(root)" : path.map(String).join(".");
}

export function loadContracts(files: readonly DataFile[]): LoadResult {
  const problems: FileProblem[] = [];
  const contracts: Contract[] = [];
  const seenIds = new Map<string, string>();
  const seenTools = new Map<string, string>();

  for (const { file, json } of files) {
    const parsed = ContractSchema.safeParse(json);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) problems.push({ file, field: fieldOf(issue), message: issue.message });
      continue;
    }
    const contract = parsed.data;
    const idOwner = seenIds.get(contract.id);
    if (idOwner) problems.push({ file, field: "id", message: `duplicate contract id "${contract.id}" (also in ${idOwner})` });
    const toolOwner = seenTools.get(contract.tool);
    if (toolOwner) problems.push({ file, field: "tool", message: `duplicate tool name "${contract.tool}" (also in ${toolOwner})` });
    seenIds.set(contract.id, file);
    seenTools.set(contract.tool, file);
    contracts.push(contract);
  }
  for (const contract of contracts) {
    const problem = downgradeProblem(contract, contracts);
    if (problem) problems.push({ file: seenIds.get(contract.id) ?? contract.id, field: "backpressure.downgradeTo", message: problem });
  }
  if (files.length === 0) problems.push({ file: "contracts/", field: "(files)", message: "no contract files found" });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, contracts };
}

export function formatProblems(problems: readonly FileProblem[]): string {
  return problems.map((p) => `${p.file}: ${p.field}: ${p.message}`).join("\n");
}

/**
 * A downgrade must be no more than the contract it stands in for: the same class, phase and
 * approval requirement, no limit above the original's, a subset of its capabilities, actions
 * and egress rules, no higher data class, and no further downgrade of its own. So the grant
 * and the decision for the original cover it.
 */
export function downgradeProblem(contract: Contract, all: readonly Contract[]): string | null {
  const targetId = contract.backpressure.downgradeTo;
  if (targetId === undefined) return null;
  const target = all.find((c) => c.id === targetId);
  if (!target) return `no contract "${targetId}" to downgrade to`;
  if (target.id === contract.id) return "a contract cannot downgrade to itself";
  if (target.class !== contract.class || target.phase !== contract.phase) return `"${targetId}" must have the same class and phase`;
  if (target.approval.required !== contract.approval.required) return `"${targetId}" must have the same approval requirement`;
  const over = (Object.keys(contract.limits) as Array<keyof Contract["limits"]>).filter((k) => target.limits[k] > contract.limits[k]);
  if (over.length > 0) return `"${targetId}" allows more than this contract in limits.${over.join(", limits.")}`;
  if (!target.capabilities.every((c) => contract.capabilities.includes(c))) return `"${targetId}" has capabilities this contract does not`;
  const grants = new Set(contract.connectors.map((g) => JSON.stringify(g)));
  if (!target.connectors.every((g) => grants.has(JSON.stringify(g)))) return `"${targetId}" grants connector operations this contract does not`;
  if (!target.actions.every((a) => contract.actions.includes(a))) return `"${targetId}" has actions this contract does not`;
  const rules = new Set(contract.egress.map((r) => JSON.stringify(r)));
  if (!target.egress.every((r) => rules.has(JSON.stringify(r)))) return `"${targetId}" has egress rules this contract does not`;
  if (DATA_CLASSES.indexOf(target.dataClass.max) > DATA_CLASSES.indexOf(contract.dataClass.max)) return `"${targetId}" accepts a higher data class`;
  if (target.backpressure.mode === "downgrade") return `"${targetId}" downgrades again; a downgrade target must reject or delay`;
  return null;
}
