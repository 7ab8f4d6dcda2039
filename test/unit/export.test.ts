// Signed exports and the offline verifier, against real ledgers: every way a bundle or the
// storage behind it can be tampered with is caught, and the report names the record.
import { runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { describe, expect, it } from "vitest";
import { type EvidenceBundle, genesisHash, ledgerFor, recordHash, verifyBundle, verifySeries } from "../../src/evidence/index.ts";
import { bearer, signToken } from "./tokens.ts";
import { BASE, callTool, getJson, worker } from "./worker-requests.ts";

/** A session with a completed, a denied and a failed run: six records. */
async function session(sid: string, tenant = "acme"): Promise<string> {
  const token = await signToken({ sid, tenant });
  await callTool(token, "analyze_readonly", { code: "export default () => 42" });
  await callTool(token, "analyze_readonly", { code: "export default () => 1", dataClass: "restricted" });
  await callTool(token, "analyze_readonly", { code: "export default () => { throw new Error('boom') }" });
  return token;
}

async function exported(sid: string, token: string, query = ""): Promise<EvidenceBundle> {
  const { status, body } = await getJson(`/v1/sessions/${sid}/export${query}`, token);
  expect(status, JSON.stringify(body)).toBe(200);
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
    expect(bundle).toMatchObject({
      format: "agent-exec/evidence-bundle@2",
      tenant: "acme",
      session: "s-export",
      head: { seq: 6 },
      range: { from: 1, to: 6 },
      prev: { seq: 0, hash: genesisHash("acme", "s-export") },
      last: { seq: 6, hash: bundle.head.hash },
    });
    expect(bundle.records.map((r) => [r.seq, r.kind])).toEqual([
      [1, "run.started"],
      [2, "run.finished"],
      [3, "run.started"],
      [4, "run.finished"],
      [5, "run.started"],
      [6, "run.finished"],
    ]);
    expect(bundle.records.map((r) => r.termination).filter(Boolean)).toEqual(["completed", "denied", "failed"]);
    // every start says what ran it: the engine, the sandbox's compatibility date and flags, the platform's build
    expect(bundle.records[0]?.runtime).toEqual({
      engine: "cloudflare-workers",
      sandbox: { compatibilityDate: "2026-11-01", compatibilityFlags: ["disallow_importable_env"] },
      build: { id: expect.any(String), tag: expect.any(String), timestamp: expect.any(String) },
    });
    // the policy snapshot every record points at travels with the bundle
    expect(Object.keys(bundle.policies)).toEqual([bundle.records[0]?.policyHash]);

    const report = await verifyBundle(bundle, { jwks: await jwks() });
    expect(report).toMatchObject({
      ok: true,
      records: 6,
      runs: { total: 3, open: 0 },
      policies: 1,
      problems: [],
      range: { from: 1, to: 6 },
      complete: true,
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

  describe("by range: a session of any size, one bounded bundle at a time", () => {
    it("exports ranges that each verify, and that verify together as the one chain, in any order", async () => {
      const token = await session("s-ranges");
      const [a, b, c] = [
        await exported("s-ranges", token, "?from=1&to=2"),
        await exported("s-ranges", token, "?from=3&to=4"),
        await exported("s-ranges", token, "?from=5&to=6"),
      ];
      expect(b).toMatchObject({ range: { from: 3, to: 4 }, prev: { seq: 2, hash: a.records[1]?.hash }, last: { seq: 4 }, head: { seq: 6 } });
      expect(b.records.map((r) => r.seq)).toEqual([3, 4]);
      const alone = await verifyBundle(b, { jwks: await jwks() });
      expect(alone).toMatchObject({ ok: true, range: { from: 3, to: 4 }, complete: false, records: 2 });
      const whole = await verifySeries([c, a, b], { jwks: await jwks() });
      expect(whole).toMatchObject({ ok: true, bundles: 3, records: 6, range: { from: 1, to: 6 }, complete: true, runs: { total: 3, open: 0 } });
    });

    it("names what is wrong with a series: a range left out, a bundle of another session", async () => {
      const token = await session("s-series");
      const [a, c] = [await exported("s-series", token, "?from=1&to=2"), await exported("s-series", token, "?from=5&to=6")];
      const gap = await verifySeries([a, c], { jwks: await jwks() });
      expect(gap.problems.map((p) => [p.code, p.bundle])).toEqual([["series_broken", 1]]);
      expect(gap.problems[0]?.message).toMatch(/seqs 3–4 are in no bundle/);
      const other = await exported("s-series-other", await session("s-series-other"), "?from=3&to=6");
      const foreign = await verifySeries([a, other], { jwks: await jwks() });
      expect(foreign.problems.map((p) => p.code)).toContain("series_broken");
    });

    it("links the next range in a Link header, and refuses ranges it cannot serve", async () => {
      const token = await session("s-range-edges");
      const response = await worker().fetch(`${BASE}/v1/sessions/s-range-edges/export?from=1&to=2`, { headers: bearer(token) });
      expect(response.headers.get("link")).toBe('</v1/sessions/s-range-edges/export?from=3&to=6>; rel="next"');
      await response.body?.cancel();
      for (const [query, code] of [
        ["?from=0", "bad_request"],
        ["?from=7", "bad_request"],
        ["?from=4&to=2", "bad_request"],
        ["?from=1&to=99", "bad_request"],
        ["?from=x", "bad_request"],
        ["?from=1&to=20001", "bad_request"],
      ] as const) {
        const { status, body } = await getJson(`/v1/sessions/s-range-edges/export${query}`, token);
        expect([query, status, (body as { error: { code: string } }).error.code]).toEqual([query, 400, code]);
      }
    });
  });

  describe("the export refuses to sign a chain that storage no longer holds", () => {
    const refused = async (sid: string, token: string) => {
      const { status, body } = await getJson(`/v1/sessions/${sid}/export`, token);
      expect(status).toBe(500);
      return (body as { error: { code: string; message: string } }).error;
    };

    it("a record edited in storage", async () => {
      const token = await session("s-edit");
      await tamper("s-edit", "UPDATE records SET body = json_set(body, '$.termination', 'completed') WHERE seq = 4");
      const error = await refused("s-edit", token);
      expect(error.code).toBe("evidence_broken");
      expect(error.message).toMatch(
        /^The session's stored chain does not hold at record seq 4 \(run\.finished, run_[0-9a-f-]+\): record_altered\. Nothing was signed\.$/,
      );
      // the ranges before it still export and verify
      expect(await verifyBundle(await exported("s-edit", token, "?from=1&to=3"), { jwks: await jwks() })).toMatchObject({ ok: true });
    });

    it("a record dropped from storage", async () => {
      const token = await session("s-drop");
      await tamper("s-drop", "DELETE FROM records WHERE seq = 3");
      expect((await refused("s-drop", token)).message).toMatch(/at record seq 4 .*: sequence_broken/);
    });

    it("two records reordered in storage", async () => {
      const token = await session("s-reorder");
      await tamper(
        "s-reorder",
        "UPDATE records SET seq = 100 WHERE seq = 2",
        "UPDATE records SET seq = 2 WHERE seq = 3",
        "UPDATE records SET seq = 3 WHERE seq = 100",
      );
      expect((await refused("s-reorder", token)).message).toMatch(/at record seq 2 \(run\.started.*: record_altered/);
    });
  });

  describe("the verifier names what was tampered with in a bundle", () => {
    it("a record edited, dropped or reordered in the bundle", async () => {
      const bundle = await exported("s-bundle-edits", await session("s-bundle-edits"));
      const edited = structuredClone(bundle);
      (edited.records[3] as Record<string, unknown>).termination = "completed";
      expect(codes(await verifyBundle(edited, { jwks: await jwks() }))).toEqual([["record_altered", 4]]);

      const dropped = { ...bundle, records: bundle.records.filter((r) => r.seq !== 3) };
      expect(codes(await verifyBundle(dropped, { jwks: await jwks() }))).toEqual([
        ["signature_mismatch", null],
        ["sequence_broken", 4],
        ["link_broken", 4],
        ["finish_unmatched", 4],
      ]);

      const records = [...bundle.records];
      [records[1], records[2]] = [records[2] as (typeof records)[number], records[1] as (typeof records)[number]];
      const reordered = await verifyBundle({ ...bundle, records }, { jwks: await jwks() });
      expect(codes(reordered).slice(0, 2)).toEqual([
        ["sequence_broken", 3],
        ["link_broken", 3],
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
      expect(await verifyBundle({ hello: "world" })).toMatchObject({ ok: false, problems: [{ code: "bundle_malformed" }] });
    });

    it("a bundle re-chained and re-signed by a forger with keys of their own: not verified unless those keys are trusted on purpose", async () => {
      const bundle = await exported("s-forged", await session("s-forged"));
      // the forger changes a termination, re-hashes every record from there, re-signs with their own key and ships that key
      const records = structuredClone(bundle.records) as Array<Record<string, unknown>>;
      (records[3] as Record<string, unknown>).termination = "completed";
      let prev = bundle.prev?.hash ?? "";
      for (const record of records) {
        record.prevHash = prev;
        record.hash = recordHash(record);
        prev = record.hash as string;
      }
      const { publicKey, privateKey } = await generateKeyPair("EdDSA");
      const last = { seq: 6, hash: prev };
      const claims = {
        iss: "agent-exec/evidence",
        tenant: "acme",
        session: "s-forged",
        genesis: bundle.genesis,
        head: last,
        records: 6,
        range: bundle.range,
        prev: bundle.prev,
        last,
        policies: Object.keys(bundle.policies),
        iat: Math.floor(Date.now() / 1000),
      };
      const signature = await new SignJWT(claims).setProtectedHeader({ alg: "EdDSA", kid: "forger", typ: "agent-exec-evidence+jwt" }).sign(privateKey);
      const forged = { ...bundle, records, head: last, last, signature, keys: { keys: [{ ...(await exportJWK(publicKey)), kid: "forger" }] } };

      expect(codes(await verifyBundle(forged))).toEqual([["signature_key_untrusted", null]]);
      expect(codes(await verifyBundle(forged, { jwks: await jwks() }))).toEqual([["signature_key_unknown", null]]);
      // trusting the bundle's own keys is a choice the report records: integrity, not origin
      expect(await verifyBundle(forged, { trustBundleKeys: true })).toMatchObject({ ok: true, signature: { keySource: "bundle", kid: "forger" } });
    });
  });
});
