// Signed exports and the offline verifier, against real ledgers: every way a bundle or the
// storage behind it can be tampered with is caught, and the report names the record.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair } from "jose";
import { describe, expect, it } from "vitest";
import { type EvidenceBundle, ledgerFor, verifyBundle } from "../../src/evidence/index.ts";
import { signToken } from "./tokens.ts";
import { callTool, getJson } from "./worker-requests.ts";

/** A session with a completed, a denied and a failed run: six records. */
async function session(sid: string, tenant = "acme"): Promise<string> {
  const token = await signToken({ sid, tenant });
  await callTool(token, "analyze_readonly", { code: "export default () => 42" });
  await callTool(token, "analyze_readonly", { code: "export default () => 1", dataClass: "restricted" });
  await callTool(token, "analyze_readonly", { code: "export default () => { throw new Error('boom') }" });
  return token;
}

async function exported(sid: string, token: string): Promise<EvidenceBundle> {
  const { status, body } = await getJson(`/v1/sessions/${sid}/export`, token);
  expect(status).toBe(200);
  return body as EvidenceBundle;
}

const jwks = async () => (await getJson("/.well-known/jwks.json")).body;

/** Changes the ledger's storage the way someone with database access could, triggers and all. */
async function tamper(sid: string, ...statements: string[]): Promise<void> {
  await runInDurableObject(ledgerFor(env.SESSION_LEDGER, "acme", sid), (_instance, state) => {
    state.storage.sql.exec("DROP TRIGGER IF EXISTS records_no_update; DROP TRIGGER IF EXISTS records_no_delete;");
    for (const statement of statements) state.storage.sql.exec(statement);
  });
}

const codes = (report: Awaited<ReturnType<typeof verifyBundle>>) => report.problems.map((p) => [p.code, p.record?.seq ?? null]);

describe("evidence export", () => {
  it("exports a session as a bundle that verifies against the published keys", async () => {
    const token = await session("s-export");
    const bundle = await exported("s-export", token);
    expect(bundle).toMatchObject({ format: "agent-exec/evidence-bundle@1", tenant: "acme", session: "s-export", head: { seq: 6 } });
    expect(bundle.records.map((r) => [r.seq, r.kind])).toEqual([
      [1, "run.started"],
      [2, "run.finished"],
      [3, "run.started"],
      [4, "run.finished"],
      [5, "run.started"],
      [6, "run.finished"],
    ]);
    expect(bundle.records.map((r) => r.termination).filter(Boolean)).toEqual(["completed", "denied", "failed"]);
    // the policy snapshot every record points at travels with the bundle
    expect(Object.keys(bundle.policies)).toEqual([bundle.records[0]?.policyHash]);

    const report = await verifyBundle(bundle, { jwks: await jwks() });
    expect(report).toMatchObject({
      ok: true,
      records: 6,
      runs: { total: 3, open: 0 },
      policies: 1,
      problems: [],
      signature: { keySource: "trusted", alg: "EdDSA" },
    });
  });

  it("serves the export only to the session's own tenant, and only with a token", async () => {
    const token = await session("s-export-private");
    expect((await getJson("/v1/sessions/s-export-private/export")).status).toBe(401);
    expect((await getJson("/v1/sessions/s-export-private/export", await signToken({ sid: "s-export-private", tenant: "globex" }))).status).toBe(404);
    expect((await getJson("/v1/sessions/s-export-private/export", await signToken({ sid: "other" }))).status).toBe(404);
    expect((await getJson("/v1/sessions/s-export-private/export", await signToken({ sid: "other", roles: ["auditor"] }))).status).toBe(200);
    expect((await getJson("/v1/sessions/s-never-written/export", await signToken({ sid: "s-never-written" }))).status).toBe(404);
    expect(token).toBeTruthy();
  });

  describe("the verifier names what was tampered with", () => {
    it("a record edited in storage", async () => {
      const token = await session("s-edit");
      await tamper("s-edit", "UPDATE records SET body = json_set(body, '$.termination', 'completed') WHERE seq = 4");
      const report = await verifyBundle(await exported("s-edit", token), { jwks: await jwks() });
      expect(report.ok).toBe(false);
      expect(codes(report)).toEqual([["record_altered", 4]]);
      expect(report.problems[0]?.message).toMatch(/seq 4 \(run\.finished\) does not match its own hash/);
    });

    it("a record dropped from storage", async () => {
      const token = await session("s-drop");
      await tamper("s-drop", "DELETE FROM records WHERE seq = 3");
      const report = await verifyBundle(await exported("s-drop", token), { jwks: await jwks() });
      expect(codes(report)).toEqual([
        ["sequence_broken", 4],
        ["link_broken", 4],
        ["finish_unmatched", 4],
      ]);
      expect(report.problems[0]?.message).toBe("Record seq 4 follows seq 2: seq 3 is missing.");
    });

    it("two records reordered in storage", async () => {
      const token = await session("s-reorder");
      await tamper(
        "s-reorder",
        "UPDATE records SET seq = 100 WHERE seq = 2",
        "UPDATE records SET seq = 2 WHERE seq = 3",
        "UPDATE records SET seq = 3 WHERE seq = 100",
      );
      const report = await verifyBundle(await exported("s-reorder", token), { jwks: await jwks() });
      expect(report.ok).toBe(false);
      // the record now at seq 2 was written as seq 3: its hash, its link and the next link all break
      expect(codes(report).slice(0, 3)).toEqual([
        ["record_altered", 2],
        ["link_broken", 2],
        ["record_altered", 3],
      ]);
    });

    it("a bundle whose signature was altered", async () => {
      const token = await session("s-signature");
      const bundle = await exported("s-signature", token);
      const [header, payload, signature = ""] = bundle.signature.split(".");
      const flipped = `${signature.slice(0, 10)}${signature[10] === "A" ? "B" : "A"}${signature.slice(11)}`;
      const report = await verifyBundle({ ...bundle, signature: `${header}.${payload}.${flipped}` }, { jwks: await jwks() });
      expect(codes(report)).toEqual([["signature_invalid", null]]);
    });

    it("a record swapped in from another session", async () => {
      const mine = await exported("s-host", await session("s-host"));
      const theirs = await exported("s-donor", await session("s-donor"));
      const records = [...mine.records];
      records[1] = theirs.records[1] as (typeof records)[number];
      const report = await verifyBundle({ ...mine, records }, { jwks: await jwks() });
      expect(codes(report)).toEqual([
        ["foreign_record", 2],
        ["link_broken", 2],
        ["link_broken", 3],
        ["finish_unmatched", 2],
      ]);
      expect(report.problems[0]?.message).toBe("Record seq 2 belongs to tenant acme, session s-donor.");
    });

    it("records cut from the end, a policy snapshot altered, a key nobody trusts", async () => {
      const bundle = await exported("s-misc", await session("s-misc"));
      const cut = await verifyBundle({ ...bundle, records: bundle.records.slice(0, 5) }, { jwks: await jwks() });
      expect(codes(cut)).toEqual([
        ["signature_mismatch", null],
        ["head_mismatch", 5],
      ]);

      const [hash = "", snapshot] = Object.entries(bundle.policies)[0] ?? [];
      const altered = await verifyBundle({ ...bundle, policies: { [hash]: { ...(snapshot as object), policy: null } } }, { jwks: await jwks() });
      expect(codes(altered)).toEqual([["policy_altered", null]]);

      const stranger = await exportJWK((await generateKeyPair("EdDSA")).publicKey);
      const untrusted = await verifyBundle(bundle, { jwks: { keys: [{ ...stranger, kid: "stranger" }] } });
      expect(codes(untrusted)).toEqual([["signature_key_unknown", null]]);
      // without a trusted JWKS the bundle's own keys are used, and the report says so
      expect(await verifyBundle(bundle)).toMatchObject({ ok: true, signature: { keySource: "bundle" } });
      expect(await verifyBundle({ hello: "world" })).toMatchObject({ ok: false, problems: [{ code: "bundle_malformed" }] });
    });
  });
});
