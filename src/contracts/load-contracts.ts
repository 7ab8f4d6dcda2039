// Parses contract files into Contracts, or says exactly which file and field is wrong.
// Used at build (node), at start (node) and when the Worker first serves (workerd).
import type { z } from "zod";
import { type Contract, ContractSchema } from "./contract-schema.ts";

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
  if (files.length === 0) problems.push({ file: "contracts/", field: "(files)", message: "no contract files found" });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, contracts };
}

export function formatProblems(problems: readonly FileProblem[]): string {
  return problems.map((p) => `${p.file}: ${p.field}: ${p.message}`).join("\n");
}
