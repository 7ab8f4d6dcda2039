// Reads contracts/*.json, connectors/*.json and policy/*.json, validates every file (what
// contracts grant of the connectors, the policy against the contracts it names), and bundles
// them into generated JSON modules for the Worker.
// Exits non-zero naming the file and field of every problem. Run by `npm start`,
// `npm test` and wrangler's [build] step.
import { existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
// The pure modules, imported directly: the layer indexes also pull Worker-only generated files.
import { connectorJsonSchema } from "../contracts/connector-schema.ts";
import { contractJsonSchema } from "../contracts/contract-schema.ts";
import { connectorGrantProblems, loadConnectors } from "../contracts/load-connectors.ts";
import { type DataFile, type FileProblem, formatProblems, loadContracts } from "../contracts/load-contracts.ts";
import { loadPolicy } from "../policy/load-policy.ts";
import { policyJsonSchema } from "../policy/policy-schema.ts";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
/** `CONTRACTS_DIR`, `CONNECTORS_DIR` and `POLICY_DIR` let tests (and operators) point the build at other folders. */
export const CONTRACTS_DIR = resolve(process.env.CONTRACTS_DIR ?? join(ROOT, "contracts"));
export const CONNECTORS_DIR = resolve(process.env.CONNECTORS_DIR ?? join(ROOT, "connectors"));
export const POLICY_DIR = resolve(process.env.POLICY_DIR ?? join(ROOT, "policy"));
export const CATALOG_OUTPUTS = {
  contracts: join(ROOT, "src/contracts/catalog.generated.json"),
  connectors: join(ROOT, "src/contracts/connectors.generated.json"),
  policy: join(ROOT, "src/policy/policy.generated.json"),
};
export const JSON_SCHEMA_FILES = {
  contracts: join(ROOT, "contracts/contract.schema.json"),
  connectors: join(ROOT, "connectors/connector.schema.json"),
  policy: join(ROOT, "policy/policy.schema.json"),
};
const customFolders = () => Boolean(process.env.CONTRACTS_DIR || process.env.CONNECTORS_DIR || process.env.POLICY_DIR);

/** Every `*.json` in a folder but the JSON Schemas beside them (`*.schema.json`). */
export function readDataFiles(dir: string): { files: DataFile[]; problems: FileProblem[] } {
  const files: DataFile[] = [];
  const problems: FileProblem[] = [];
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((name) => name.endsWith(".json") && !name.endsWith(".schema.json"))
      .sort();
  } catch (error) {
    return { files, problems: [{ file: dir, field: "(folder)", message: error instanceof Error ? error.message : String(error) }] };
  }
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

/** Reads and validates the contracts, connectors and policy the server serves, writing nothing; `files` is what was read. */
export function checkCatalog(): { ok: true; files: string } | { ok: false; message: string } {
  const contractFiles = readDataFiles(CONTRACTS_DIR);
  const contracts = loadContracts(contractFiles.files);
  // connectors are optional: no connectors/ folder is none (one named by CONNECTORS_DIR must exist)
  const connectorFiles = existsSync(CONNECTORS_DIR) || process.env.CONNECTORS_DIR ? readDataFiles(CONNECTORS_DIR) : { files: [], problems: [] };
  const connectors = loadConnectors(connectorFiles.files);
  const fileOf = (contract: { id: string }) =>
    contractFiles.files.find((file) => (file.json as { id?: unknown } | null)?.id === contract.id)?.file ?? contract.id;
  const grants = contracts.ok && connectors.ok ? connectorGrantProblems(contracts.contracts, connectors.connectors, fileOf) : [];
  const policyFiles = readDataFiles(POLICY_DIR);
  const policy = contracts.ok ? loadPolicy(policyFiles.files, contracts.contracts) : undefined;
  const problems = [
    ...contractFiles.problems,
    ...(contracts.ok ? [] : contracts.problems),
    ...connectorFiles.problems,
    ...(connectors.ok ? [] : connectors.problems),
    ...grants,
    ...policyFiles.problems,
    ...(policy && !policy.ok ? policy.problems : []),
  ];
  if (problems.length > 0) return { ok: false, message: formatProblems(problems) };
  return { ok: true, files: JSON.stringify({ contracts: contractFiles.files, connectors: connectorFiles.files, policy: policyFiles.files }) };
}

export function buildCatalog(): { ok: true } | { ok: false; message: string } {
  const checked = checkCatalog();
  if (!checked.ok) return checked;
  // Only the default folders are bundled: another folder (a test's, an operator's trial) must
  // never overwrite what every other build and test run bundles. `npm start` passes those as
  // CATALOG_OVERRIDE instead (see catalogOverride()).
  if (!customFolders() || !Object.values(CATALOG_OUTPUTS).every((file) => existsSync(file))) {
    // The Worker bundles the default catalog even when another is served: on a fresh clone it
    // has to exist before the first build, made from the default folders.
    writeIfChanged(CATALOG_OUTPUTS.contracts, `${JSON.stringify({ files: readDataFiles(join(ROOT, "contracts")).files }, null, 2)}\n`);
    writeIfChanged(CATALOG_OUTPUTS.connectors, `${JSON.stringify({ files: readDataFiles(join(ROOT, "connectors")).files }, null, 2)}\n`);
    writeIfChanged(CATALOG_OUTPUTS.policy, `${JSON.stringify({ files: readDataFiles(join(ROOT, "policy")).files }, null, 2)}\n`);
  }
  return { ok: true };
}

/** The catalog of the folders in CONTRACTS_DIR/CONNECTORS_DIR/POLICY_DIR as one JSON value, or null for the defaults. */
export function catalogOverride(): string | null {
  if (!customFolders()) return null;
  return JSON.stringify({
    contracts: readDataFiles(CONTRACTS_DIR).files,
    connectors: readDataFiles(CONNECTORS_DIR).files,
    policy: readDataFiles(POLICY_DIR).files,
  });
}

/** Atomic (write, then rename) and only when the content differs, so concurrent builds never read half a file. */
function writeIfChanged(file: string, content: string): void {
  try {
    if (readFileSync(file, "utf8") === content) return;
  } catch {
    // not there yet
  }
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, content);
  renameSync(temporary, file);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  // `--schemas` regenerates the editors' JSON Schemas from the zod schemas (a unit test checks they are current).
  if (process.argv.includes("--schemas")) {
    writeFileSync(JSON_SCHEMA_FILES.contracts, `${JSON.stringify(contractJsonSchema(), null, 2)}\n`);
    writeFileSync(JSON_SCHEMA_FILES.connectors, `${JSON.stringify(connectorJsonSchema(), null, 2)}\n`);
    writeFileSync(JSON_SCHEMA_FILES.policy, `${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
  }
  const result = buildCatalog();
  if (!result.ok) {
    process.stderr.write(`Contracts, connectors or policy are invalid; nothing was started.\n${result.message}\n`);
    process.exit(1);
  }
}
