// Writes the table of the platform's error codes (src/errors/platform-error.ts: each code's HTTP
// status and default hint) into docs/http-api.md, between its error-table markers. With `--check`
// it writes nothing and exits 1 when the table there is not what it would write, naming the codes
// that differ. `--file <path>` works on another copy of the page (the tests use one). Run by
// `npm run docs:errors`; `npm run check` runs the check.
import { readFileSync, writeFileSync } from "node:fs";
import { relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defaultHint, ERROR_CODES, type ErrorCode, PlatformError } from "../errors/platform-error.ts";

const ROOT = resolve(fileURLToPath(import.meta.url), "../../..");
export const HTTP_API_DOC = resolve(ROOT, "docs/http-api.md");
export const TABLE_START = "<!-- error-table:start -->";
export const TABLE_END = "<!-- error-table:end -->";

const HEADER = ["| code | HTTP status | meaning (the default hint) |", "|---|---|---|"];

/** A table cell: pipes escaped, on one line. */
const cell = (text: string) => text.replaceAll("|", "\\|").replaceAll("\n", " ");

/** One row per code, in the order platform-error.ts declares them. */
export function errorRows(): Map<ErrorCode, string> {
  return new Map(
    // the status is fixed per code; a PlatformError is the one place that reads it
    ERROR_CODES.map((code) => [code, `| \`${code}\` | ${new PlatformError(code, "").status} | ${cell(defaultHint(code))} |`]),
  );
}

/** The whole block between the markers, markers included. */
export function errorTable(): string {
  return [TABLE_START, ...HEADER, ...errorRows().values(), TABLE_END].join("\n");
}

type Located = { ok: true; before: string; table: string; after: string } | { ok: false; message: string };

function locate(doc: string): Located {
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start === -1 || end === -1 || end < start) return { ok: false, message: `the markers ${TABLE_START} and ${TABLE_END} are missing or out of order` };
  return { ok: true, before: doc.slice(0, start), table: doc.slice(start, end + TABLE_END.length), after: doc.slice(end + TABLE_END.length) };
}

/** What differs between the table in a page and the one the code gives: one line per code, or why the page cannot be read. */
export function tableProblems(doc: string): string[] {
  const located = locate(doc);
  if (!located.ok) return [located.message];
  if (located.table === errorTable()) return [];
  const expected = errorRows();
  const found = new Map<string, string>();
  for (const line of located.table.split("\n")) {
    const code = /^\|\s*`([a-z_]+)`\s*\|/.exec(line)?.[1];
    if (code) found.set(code, line.trim());
  }
  const problems: string[] = [];
  for (const [code, row] of expected) {
    const there = found.get(code);
    if (there === undefined) problems.push(`missing: ${code}`);
    else if (there !== row) problems.push(`differs: ${code} (the code says: ${row})`);
  }
  for (const code of found.keys()) if (!expected.has(code as ErrorCode)) problems.push(`not in the code: ${code}`);
  if (problems.length === 0) problems.push("the rows match but the table around them (header, order or spacing) does not");
  return problems;
}

function fail(message: string): never {
  process.stderr.write(`${message}\n`);
  process.exit(1);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  const check = args.includes("--check");
  const fileAt = args.indexOf("--file");
  const value = fileAt === -1 ? undefined : args[fileAt + 1];
  if (fileAt !== -1 && (value === undefined || value.startsWith("--"))) fail("--file needs a path.");
  const file = value === undefined ? HTTP_API_DOC : resolve(value);
  const shown = relative(process.cwd(), file) || file;
  let doc: string;
  try {
    doc = readFileSync(file, "utf8");
  } catch (error) {
    fail(`Cannot read ${shown}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const problems = tableProblems(doc);
  if (check) {
    if (problems.length > 0) {
      fail(
        `The error table in ${shown} is not what src/errors/platform-error.ts gives (npm run docs:errors rewrites it):\n${problems.map((p) => `  ${p}`).join("\n")}`,
      );
    }
  } else {
    const located = locate(doc);
    if (!located.ok) fail(`${shown}: ${located.message}; add them where the table goes.`);
    if (problems.length > 0) writeFileSync(file, `${located.before}${errorTable()}${located.after}`);
  }
}
