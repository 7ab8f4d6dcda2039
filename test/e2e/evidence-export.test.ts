// Evidence as an auditor gets it from the running server: a signed export verified offline
// by the repository's own CLI, and a run cut off by killing the whole local runtime, closed
// by the ledger's alarm after the server comes back.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type LocalServer, newStateDir, ROOT, startLocalServer, until } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient } from "../helpers/mcp-clients.ts";
import { sharedServer } from "../helpers/shared-server.ts";

const ALICE = { tenant: "acme", actor: "alice", session: "s-audit" };
const work = mkdtempSync(join(tmpdir(), "agent-exec-verify-"));

function verify(...args: string[]): { status: number | null; out: string } {
  const run = spawnSync("npm", ["run", "--silent", "verify", "--", ...args], { cwd: ROOT, encoding: "utf8" });
  return { status: run.status, out: `${run.stdout}${run.stderr}` };
}

async function getJson(server: LocalServer, path: string, identity = ALICE): Promise<unknown> {
  const response = await fetch(`${server.url}${path}`, { headers: { authorization: `Bearer ${await server.token(identity)}` } });
  expect(response.status).toBe(200);
  return await response.json();
}

describe("signed export, verified offline", () => {
  let server: LocalServer;
  let bundleFile: string;
  let jwksFile: string;

  beforeAll(async () => {
    server = await sharedServer();
    const session = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token(ALICE));
    await session.callTool("analyze_readonly", { code: "export default () => 'fine'" });
    await session.callTool("analyze_readonly", { code: "export default () => 1", dataClass: "restricted" });
    await session.close();
    bundleFile = join(work, "bundle.json");
    jwksFile = join(work, "jwks.json");
    writeFileSync(bundleFile, JSON.stringify(await getJson(server, "/v1/sessions/s-audit/export")));
    writeFileSync(jwksFile, JSON.stringify(await (await fetch(`${server.url}/.well-known/jwks.json`)).json()));
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("records in every run's start what ran it: the workerd version, the sandbox's compatibility date and flags, the build", () => {
    const bundle = JSON.parse(readFileSync(bundleFile, "utf8")) as { records: Array<{ kind: string; runtime?: unknown }> };
    const workerd = (JSON.parse(readFileSync(join(ROOT, "node_modules/wrangler/node_modules/workerd/package.json"), "utf8")) as { version: string }).version;
    const starts = bundle.records.filter((record) => record.kind === "run.started");
    expect(starts).toHaveLength(2);
    for (const start of starts) {
      expect(start.runtime).toEqual({
        engine: `workerd ${workerd}`,
        sandbox: { compatibilityDate: "2026-11-01", compatibilityFlags: ["disallow_importable_env"] },
        build: { id: expect.stringMatching(/^[0-9a-f-]{8,}$/), tag: expect.any(String), timestamp: expect.any(String) },
      });
    }
  });

  it("verifies a good bundle against the server's published keys (exit 0)", () => {
    const { status, out } = verify(bundleFile, "--jwks", jwksFile);
    console.log(out);
    expect(status).toBe(0);
    expect(out).toContain("tenant acme, session s-audit");
    expect(out).toContain("4 records, 2 runs (0 still open), 1 policy snapshot");
    expect(out).toContain("key from the --jwks you gave");
    expect(out).toMatch(/VERIFIED/);
  });

  it("names the record that breaks a tampered bundle (exit 1)", () => {
    const bundle = JSON.parse(readFileSync(bundleFile, "utf8"));
    bundle.records[3].termination = "completed"; // the denied run, rewritten as completed
    const tampered = join(work, "tampered.json");
    writeFileSync(tampered, JSON.stringify(bundle));
    const { status, out } = verify(tampered, "--jwks", jwksFile);
    console.log(out);
    expect(status).toBe(1);
    expect(out).toMatch(
      /BROKEN record_altered at record #4 \(seq 4, run\.finished, run_[0-9a-f-]+\): Record seq 4 \(run\.finished\) does not match its own hash/,
    );
    expect(out).toContain("NOT VERIFIED: 1 problem.");
  });

  it("does not call a bundle verified on the strength of the keys it carries itself, unless told to (exit 1)", () => {
    const untrusted = verify(bundleFile);
    expect(untrusted.status).toBe(1);
    expect(untrusted.out).toMatch(/BROKEN signature_key_untrusted at bundle: .*--jwks.*--trust-bundle-keys/);
    const trusted = verify(bundleFile, "--trust-bundle-keys");
    expect(trusted.status).toBe(0);
    expect(trusted.out).toContain("key from the bundle itself");
    expect(verify(bundleFile, "--trust-bundle-keys", "--jwks", jwksFile).status).toBe(2);
  });

  it("verifies a session exported as range bundles as one chain, and names a range left out", async () => {
    const files = await Promise.all(
      [
        [1, 2],
        [3, 3],
        [4, 4],
      ].map(async ([from, to]) => {
        const file = join(work, `range-${from}-${to}.json`);
        writeFileSync(file, JSON.stringify(await getJson(server, `/v1/sessions/s-audit/export?from=${from}&to=${to}`)));
        return file;
      }),
    );
    const [first = "", second = "", third = ""] = files;
    const whole = verify(third, first, second, "--jwks", jwksFile);
    console.log(whole.out);
    expect(whole.status).toBe(0);
    expect(whole.out).toContain("3 evidence bundles: tenant acme, session s-audit");
    expect(whole.out).toContain("seq 1–4: the whole session up to its signed head");
    const part = verify(second, "--jwks", jwksFile);
    expect(part.status).toBe(0);
    expect(part.out).toContain("seq 3–3 of the 4 the session held when exported: a part");
    const gap = verify(first, third, "--jwks", jwksFile);
    expect(gap.status).toBe(1);
    expect(gap.out).toMatch(/BROKEN series_broken at .*range-4-4\.json bundle: .*seqs 3–3 are in no bundle/);
  });

  it("is the package's bin too, and refuses to be used wrongly (exit 2)", () => {
    const bin = (JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { bin: Record<string, string> }).bin["agent-exec-verify"] ?? "";
    const run = spawnSync(process.execPath, [join(ROOT, bin), bundleFile, "--jwks", jwksFile, "--json"], { encoding: "utf8" });
    expect(run.status).toBe(0);
    expect(JSON.parse(run.stdout)).toMatchObject({ ok: true, records: 4, problemCount: 0 });
    expect(verify().status).toBe(2);
    expect(verify(join(work, "missing.json")).out).toMatch(/cannot read bundle/);
    // JSON, but not a bundle: unusable input too
    const notABundle = join(work, "not-a-bundle.json");
    writeFileSync(notABundle, JSON.stringify({ records: "none" }));
    const malformed = verify(notABundle, "--jwks", jwksFile);
    expect(malformed.status).toBe(2);
    expect(malformed.out).toMatch(/bundle_malformed/);
  });
});

describe("nothing lost when the runtime dies", () => {
  it("closes a run cut off by killing the whole local runtime, once the server is back and the deadline has passed", async () => {
    const stateDir = newStateDir();
    const env = { EVIDENCE_RECONCILE_GRACE_MS: "1000" };
    const identity = { tenant: "acme", actor: "alice", session: "s-killed" };
    const first = await startLocalServer({ stateDir, env });
    const session = await connectClient(CLIENT_KINDS[0], first.mcpUrl, await first.token(identity));
    // a run that is still going when everything is killed
    const call = session.callTool("analyze_readonly", { code: "export default () => new Promise((resolve) => setTimeout(() => resolve('never seen'), 4000))" });
    call.catch(() => undefined);
    const records = async (server: LocalServer) =>
      ((await getJson(server, "/v1/sessions/s-killed/evidence", identity)) as { records: Array<Record<string, unknown>> }).records;
    const started = await until("the run to start", async () => (await records(first)).find((r) => r.kind === "run.started"));
    const killedAt = Date.now();
    await first.kill();

    const second = await startLocalServer({ stateDir, env });
    try {
      const closing = await until(
        "the ledger's alarm to close the run",
        async () => (await records(second)).find((r) => r.kind === "run.finished" && r.runId === started.runId),
        45_000,
      );
      console.log(`killed run closed ${Date.now() - killedAt} ms after the kill: ${JSON.stringify(closing)}`);
      expect(closing).toMatchObject({
        startSeq: started.seq,
        termination: "cancelled",
        error: { code: "run_lost", message: expect.stringMatching(/lost the run/) },
        reconciledBy: "ledger_alarm",
      });
      // not before its deadline plus grace
      expect(Date.parse(closing.at as string)).toBeGreaterThanOrEqual((started.deadlineAt as number) + 1000);
      // and the session still verifies, reconciled record included
      const bundle = await getJson(second, "/v1/sessions/s-killed/export", identity);
      const file = join(work, "killed.json");
      writeFileSync(file, JSON.stringify(bundle));
      expect(verify(file, "--trust-bundle-keys").status).toBe(0);
    } finally {
      await second.stop();
    }
  });
});
