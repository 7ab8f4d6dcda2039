#!/usr/bin/env node
// npm run verify -- bundle.json [--jwks jwks.json] [--json]
// Checks an evidence bundle (GET /v1/sessions/{sid}/export) offline: the signature over its
// head, every link of its hash chain, every policy hash. Exit 0: verified; 1: broken (the
// report names the record); 2: the command was used wrongly or a file is unreadable.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type VerifyReport, verifyBundle } from "../evidence/verify-bundle.ts";

const USAGE = "usage: npm run verify -- <bundle.json> [--jwks <jwks.json>] [--json]";

function readJson(file: string, what: string): unknown {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (error) {
    return usage(`cannot read ${what} ${file}: ${(error as Error).message}`);
  }
  try {
    return JSON.parse(text);
  } catch {
    return usage(`${what} ${file} is not JSON`);
  }
}

function usage(message: string): never {
  process.stderr.write(`${message}\n${USAGE}\n`);
  process.exit(2);
}

export function formatReport(report: VerifyReport, bundleFile: string): string {
  const lines: string[] = [];
  const subject = report.tenant === null ? bundleFile : `tenant ${report.tenant}, session ${report.session}`;
  lines.push(`evidence bundle ${bundleFile}: ${subject}`);
  if (report.head) {
    lines.push(
      `  ${report.records} records, ${report.runs.total} runs (${report.runs.open} still open), ${report.policies} policy snapshot${report.policies === 1 ? "" : "s"}`,
    );
    lines.push(`  head: seq ${report.head.seq}, ${report.head.hash}`);
  }
  if (report.signature) {
    const source =
      report.signature.keySource === "trusted" ? "from the --jwks you gave" : "from the bundle itself: pass --jwks with the server's keys to trust it";
    lines.push(`  signed by kid ${report.signature.kid ?? "?"} (${report.signature.alg ?? "?"}), key ${source}`);
  }
  for (const problem of report.problems) {
    const at = problem.record ? `record #${problem.record.index + 1} (seq ${problem.record.seq}, ${problem.record.kind}, ${problem.record.runId})` : "bundle";
    lines.push(`  BROKEN ${problem.code} at ${at}: ${problem.message}`);
  }
  if (report.problemCount > report.problems.length) lines.push(`  …and ${report.problemCount - report.problems.length} more problems`);
  lines.push(
    report.ok
      ? "VERIFIED: the signature, every link of the chain and every policy hash check out."
      : `NOT VERIFIED: ${report.problemCount} problem${report.problemCount === 1 ? "" : "s"}.`,
  );
  return `${lines.join("\n")}\n`;
}

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseOptions>;
  try {
    parsed = parseOptions();
  } catch (error) {
    return usage((error as Error).message);
  }
  const [bundleFile, ...extra] = parsed.positionals;
  if (!bundleFile || extra.length > 0) return usage("give exactly one bundle file");
  const bundle = readJson(bundleFile, "bundle");
  const jwks = parsed.values.jwks === undefined ? undefined : readJson(parsed.values.jwks, "JWKS");
  const report = await verifyBundle(bundle, jwks === undefined ? {} : { jwks });
  process.stdout.write(parsed.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, bundleFile));
  // 1: a bundle whose evidence does not check out; 2: input that is not a bundle at all
  process.exitCode = report.ok ? 0 : report.problems.some((problem) => problem.code === "bundle_malformed") ? 2 : 1;
}

function parseOptions() {
  return parseArgs({ options: { jwks: { type: "string" }, json: { type: "boolean", default: false } }, allowPositionals: true });
}

await main();
