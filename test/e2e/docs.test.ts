// The error table in docs/http-api.md is generated from src/errors/platform-error.ts
// (src/local/build-error-table.ts); `--check` keeps it from drifting.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { ROOT } from "../helpers/local-server.ts";

const SCRIPT = join(ROOT, "src/local/build-error-table.ts");
const temporary = mkdtempSync(join(tmpdir(), "agent-exec-docs-"));
afterAll(() => rmSync(temporary, { recursive: true, force: true }));

const run = (...args: string[]) => spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: "utf8", timeout: 30_000 });

describe("the error table in docs/http-api.md", () => {
  it("is what the code gives", () => {
    const result = run("--check");
    expect(result.status, result.stderr).toBe(0);
  });

  it("fails the check, naming the code, when a row is missing", () => {
    const doc = readFileSync(join(ROOT, "docs/http-api.md"), "utf8");
    const row = doc.split("\n").find((line) => line.startsWith("| `over_budget` |"));
    expect(row, "the table has an over_budget row").toBeDefined();
    const copy = join(temporary, "http-api.md");
    writeFileSync(copy, doc.replace(`${row}\n`, ""));
    const result = run("--check", "--file", copy);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("missing: over_budget");
  });
});
