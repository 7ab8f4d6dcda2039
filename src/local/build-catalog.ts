// Reads contracts/*.json, validates every file, and bundles them into
// src/contracts/catalog.generated.json for the Worker. Exits non-zero naming the
// file and field of every problem. Run by `npm start`, `npm test` and wrangler's build.
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
// Imports the pure modules directly: the index also pulls the Worker-only generated catalog.
import { contractJsonSchema } from "../contracts/contract-schema.ts";
import { type ContractFile, type ContractProblem, formatProblems, loadContracts } from "../contracts/load-contracts.ts";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
/** `CONTRACTS_DIR` lets tests (and operators) point the build at another folder. */
export const CONTRACTS_DIR = resolve(process.env.CONTRACTS_DIR ?? join(ROOT, "contracts"));
const OUTPUT = join(ROOT, "src/contracts/catalog.generated.json");

/** One entry per contract file; the JSON Schema beside them (`*.schema.json`) is not a contract. */
export function readContractFiles(dir: string = CONTRACTS_DIR): { files: ContractFile[]; problems: ContractProblem[] } {
  const files: ContractFile[] = [];
  const problems: ContractProblem[] = [];
  const names = readdirSync(dir)
    .filter((name) => name.endsWith(".json") && !name.endsWith(".schema.json"))
    .sort();
  for (const name of names) {
    const absolute = join(dir, name);
    const fromRoot = relative(ROOT, absolute);
    const file = fromRoot.startsWith("..") ? absolute : fromRoot;
    try {
      files.push({ file, json: JSON.parse(readFileSync(absolute, "utf8")) });
    } catch (error) {
      problems.push({ file, field: "(json)", message: error instanceof Error ? error.message : String(error) });
    }
  }
  return { files, problems };
}

export function buildCatalog(dir: string = CONTRACTS_DIR): { ok: true; count: number } | { ok: false; message: string } {
  const { files, problems } = readContractFiles(dir);
  const loaded = loadContracts(files);
  const all = [...problems, ...(loaded.ok ? [] : loaded.problems)];
  if (all.length > 0) return { ok: false, message: formatProblems(all) };
  writeFileSync(OUTPUT, `${JSON.stringify({ files }, null, 2)}\n`);
  return { ok: true, count: files.length };
}

/** `--schema` regenerates contracts/contract.schema.json from the zod schema (a unit test checks it is current). */
export const CONTRACT_JSON_SCHEMA_FILE = join(ROOT, "contracts/contract.schema.json");

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes("--schema")) writeFileSync(CONTRACT_JSON_SCHEMA_FILE, `${JSON.stringify(contractJsonSchema(), null, 2)}\n`);
  const result = buildCatalog();
  if (!result.ok) {
    process.stderr.write(`Contracts are invalid; nothing was started.\n${result.message}\n`);
    process.exit(1);
  }
}
