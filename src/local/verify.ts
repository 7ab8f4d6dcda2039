#!/usr/bin/env node
// npm run verify -- bundle.json [more.json …] (--jwks jwks.json | --trust-bundle-keys) [--json]
// Checks evidence bundles (GET /v1/sessions/{sid}/export, one or a series of ranges)
// offline, as one chain: each signature, every link of the hash chain across the bundles,
// every policy hash. Exit 0: verified against keys you trust; 1: broken, or the signing
// key came only from the bundles and you did not say to trust it (the report names the
// record); 2: the command was used wrongly or a file is unreadable.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { type VerifyReport, verifySeries } from "../evidence/verify-bundle.ts";

const USAGE = "usage: npm run verify -- <bundle.json> [<bundle.json> …] (--jwks <jwks.json> | --trust-bundle-keys) [--json]";

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

export function formatReport(report: VerifyReport, bundleFiles: readonly string[]): string {
  const lines: string[] = [];
  const named = bundleFiles.length === 1 ? `evidence bundle ${bundleFiles[0]}` : `${bundleFiles.length} evidence bundles`;
  const subject = report.tenant === null ? "" : `: tenant ${report.tenant}, session ${report.session}`;
  lines.push(`${named}${subject}`);
  if (report.head && report.range) {
    lines.push(
      `  ${report.records} records, ${report.runs.total} runs (${report.runs.open} still open), ${report.policies} policy snapshot${report.policies === 1 ? "" : "s"}`,
    );
    lines.push(
      report.complete
        ? `  seq 1–${report.range.to}: the whole session up to its signed head (seq ${report.head.seq}, ${report.head.hash})`
        : `  seq ${report.range.from}–${report.range.to} of the ${report.head.seq} the session held when exported: a part; give every range bundle to verify the whole`,
    );
  }
  if (report.signature) {
    const source =
      report.signature.keySource === "trusted"
        ? "from the --jwks you gave"
        : "from the bundle itself (a forger's re-signed bundle would carry their own): pass --jwks with the server's keys";
    lines.push(`  signed by kid ${report.signature.kid ?? "?"} (${report.signature.alg ?? "?"}), key ${source}`);
  }
  for (const problem of report.problems) {
    const file = problem.bundle === undefined ? "" : `${bundleFiles[problem.bundle] ?? `bundle ${problem.bundle + 1}`} `;
    const at = problem.record ? `record #${problem.record.index + 1} (seq ${problem.record.seq}, ${problem.record.kind}, ${problem.record.runId})` : "bundle";
    lines.push(`  BROKEN ${problem.code} at ${file}${at}: ${problem.message}`);
  }
  if (report.problemCount > report.problems.length) lines.push(`  …and ${report.problemCount - report.problems.length} more problems`);
  lines.push(
    report.ok
      ? `VERIFIED: the signature${report.bundles === 1 ? "" : "s"}, every link of the chain and every policy hash check out.`
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
  const files = parsed.positionals;
  if (files.length === 0) return usage("give one bundle file, or every range bundle of a session");
  if (parsed.values.jwks !== undefined && parsed.values["trust-bundle-keys"]) return usage("give --jwks or --trust-bundle-keys, not both");
  const bundles = files.map((file) => readJson(file, "bundle"));
  const jwks = parsed.values.jwks === undefined ? undefined : readJson(parsed.values.jwks, "JWKS");
  const report = await verifySeries(bundles, jwks === undefined ? { trustBundleKeys: parsed.values["trust-bundle-keys"] } : { jwks });
  process.stdout.write(parsed.values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, files));
  // 1: a bundle whose evidence does not check out; 2: input that is not a bundle at all
  process.exitCode = report.ok ? 0 : report.problems.some((problem) => problem.code === "bundle_malformed") ? 2 : 1;
}

function parseOptions() {
  return parseArgs({
    options: { jwks: { type: "string" }, "trust-bundle-keys": { type: "boolean", default: false }, json: { type: "boolean", default: false } },
    allowPositionals: true,
  });
}

await main();
