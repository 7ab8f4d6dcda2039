import { runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { canonicalJson, type EvidenceEntry, genesisHash, ledgerFor, type RunStarted, recordHash, sha256Hex } from "../../src/evidence/index.ts";
import { SessionLedger } from "../../src/evidence/session-ledger.ts";

const header = (runId: string, tenant = "acme", session = "s-1") => ({
  runId,
  tenant,
  actor: "alice",
  session,
  contract: { id: "read-only-analysis", version: "1.0.0", class: "read-only" },
  policyHash: "c".repeat(64),
  decision: { outcome: "allow" as const, reasons: [], dataClass: "internal", team: "platform", scope: ["read"] },
});
const runId = (n: number) => `run_00000000-0000-4000-8000-${String(n).padStart(12, "0")}`;
const started = (n: number, tenant?: string, session?: string): RunStarted => ({
  kind: "run.started",
  ...header(runId(n), tenant, session),
  roles: [],
  lane: "interactive",
  codeSha256: "a".repeat(64),
  codeBytes: 10,
  inputSha256: "b".repeat(64),
  inputBytes: 2,
  intent: { source: "mcp" },
  task: null,
  plan: null,
  profile: { capabilities: [], egressRules: 0 },
  deadlineAt: 2_000_000_000_000,
});
const finished = (n: number, startSeq: number): EvidenceEntry => ({
  kind: "run.finished",
  ...header(runId(n)),
  startSeq,
  termination: "completed",
  latencyMs: { start: 5, exec: 1, total: 9 },
  resultBytes: 4,
  logs: { lines: 0, bytes: 0, truncated: false },
});

type Ledger = ReturnType<typeof ledgerFor>;

async function appendOk(ledger: Ledger, entry: EvidenceEntry): Promise<{ seq: number; at: string }> {
  const result = await ledger.append(entry);
  if (!result.ok) throw new Error(`append refused: ${result.reason} ${result.detail}`);
  return result;
}

async function pageOk(ledger: Ledger, after: number, limit: number) {
  const result = await ledger.page(after, limit);
  if (!result.ok) throw new Error(`page refused: ${result.detail}`);
  return result.page;
}

describe("session ledger", () => {
  it("appends records with increasing sequence numbers and returns them oldest first", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-order");
    const first = await appendOk(ledger, { ...started(1), session: "s-order" });
    const second = await appendOk(ledger, { ...finished(1, first.seq), session: "s-order" });
    expect(second.seq).toBeGreaterThan(first.seq);
    const page = await pageOk(ledger, 0, 10);
    expect(page.records.map((r) => [r.seq, r.kind])).toEqual([
      [first.seq, "run.started"],
      [second.seq, "run.finished"],
    ]);
    expect(page.records[0]?.at).toBe(first.at);
    expect(page.nextCursor).toBeNull();
  });

  it("pages with a cursor until nothing is left", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-1");
    for (let n = 1; n <= 5; n++) await appendOk(ledger, started(n));
    const one = await pageOk(ledger, 0, 2);
    const two = await pageOk(ledger, one.nextCursor ?? -1, 2);
    const three = await pageOk(ledger, two.nextCursor ?? -1, 2);
    expect([...one.records, ...two.records, ...three.records].map((r) => r.runId)).toEqual([1, 2, 3, 4, 5].map(runId));
    expect(three.nextCursor).toBeNull();
  });

  it("admits a run's outbound requests up to its limit and none after its finish record, recording each refusal", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-admit");
    const start = await appendOk(ledger, { ...started(1), session: "s-admit" });
    const attempt = {
      kind: "egress" as const,
      at: new Date().toISOString(),
      via: "code",
      protocol: "https",
      method: "GET",
      destination: "https://api.example.com:443",
      path: "/v1/x",
      decision: "allowed" as const,
      reason: null,
      status: null,
      bytesOut: 0,
      bytesIn: null,
      durationMs: 0,
      drift: null,
      injected: [],
    };
    const answers = [];
    for (let i = 0; i < 4; i++) answers.push(await ledger.admitEgress(runId(1), 3, attempt));
    expect(answers).toEqual([
      { ok: true, admitted: 1 },
      { ok: true, admitted: 2 },
      { ok: true, admitted: 3 },
      { ok: false, reason: "subrequest_limit" },
    ]);
    const finish = await ledger.append({ ...finished(1, start.seq), session: "s-admit" });
    expect(finish).toMatchObject({ ok: true, finished: { activity: { egress: { admitted: 3, denied: 1 } } } });
    // a second run of the same session is not held to the first one's count
    expect(await ledger.admitEgress(runId(2), 1, attempt)).toEqual({ ok: true, admitted: 1 });
    expect(await ledger.admitEgress(runId(1), 100, attempt)).toEqual({ ok: false, reason: "run_finished" });
    expect((await ledger.activity(runId(1))).map((a) => [a.decision, a.reason, a.late ?? false])).toEqual([
      ["denied", "subrequest_limit", false],
      ["denied", "run_finished", true],
    ]);
    expect(await ledger.admitEgress(runId(3), 1, { ...attempt, kind: "nonsense" } as never)).toEqual({ ok: false, reason: "malformed_activity" });
  });

  it("keeps tenants apart even when they use the same session id", async () => {
    await appendOk(ledgerFor(env.SESSION_LEDGER, "acme", "shared"), started(1, "acme", "shared"));
    expect(await ledgerFor(env.SESSION_LEDGER, "globex", "shared").count()).toBe(0);
    expect(await ledgerFor(env.SESSION_LEDGER, "acme", "shared").count()).toBe(1);
  });

  describe("task ids", () => {
    const withTask = (n: number, jti: string): EvidenceEntry => ({
      ...started(n, "acme", "s-tasks"),
      task: { jti, kid: "k", expiresAt: 2_000_000_000, verdict: "accepted" },
    });

    it("spends a task id with the record that starts its run, once", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-tasks");
      const first = await ledger.append(withTask(1, "jti-once-aaaaaaaaaaaa"), {
        consume: [{ jti: "jti-once-aaaaaaaaaaaa", exp: 2_000_000_000, role: "task" as const }],
      });
      expect(first).toMatchObject({ ok: true, replayed: false });
      const again = await ledger.append(withTask(2, "jti-once-aaaaaaaaaaaa"), {
        consume: [{ jti: "jti-once-aaaaaaaaaaaa", exp: 2_000_000_000, role: "task" as const }],
      });
      expect(again).toMatchObject({ ok: true, replayed: true });
      // the replay is on record, with the ledger's verdict
      const page = await pageOk(ledger, 0, 10);
      expect(page.records.map((r) => r.kind === "run.started" && r.task?.verdict)).toEqual(["accepted", "task_replayed"]);
    });

    it("marks only the id that was spent before as replayed", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-tasks");
      const planned = (n: number, taskJti: string): RunStarted =>
        ({
          ...withTask(n, taskJti),
          intent: { source: "planner", planner: "p", kid: "k", jti: "plan-1", verdict: "accepted" },
        }) as RunStarted;
      await ledger.append(planned(8, "fresh-one-eeeeeeeeeeeee"), {
        consume: [
          { jti: "planner:p:plan-1", exp: 2_000_000_000, role: "intent" },
          { jti: "policy:fresh-one-eeeeeeeeeeeee", exp: 2_000_000_000, role: "task" },
        ],
      });
      await ledger.append(planned(9, "fresh-two-ffffffffffff"), {
        consume: [
          { jti: "planner:p:plan-1", exp: 2_000_000_000, role: "intent" },
          { jti: "policy:fresh-two-ffffffffffff", exp: 2_000_000_000, role: "task" },
        ],
      });
      const page = await pageOk(ledger, 0, 100);
      const last = page.records.at(-1);
      expect(last?.kind === "run.started" && [last.intent.source === "planner" && last.intent.verdict, last.task?.verdict]).toEqual([
        "task_replayed",
        "accepted",
      ]);
    });

    it("spends all of a run's ids or none", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-tasks");
      await ledger.append(withTask(3, "jti-planner-bbbbbbbbbb"), { consume: [{ jti: "jti-planner-bbbbbbbbbb", exp: 2_000_000_000, role: "task" as const }] });
      const mixed = await ledger.append(withTask(4, "jti-fresh-cccccccccccc"), {
        consume: [
          { jti: "jti-fresh-cccccccccccc", exp: 2_000_000_000, role: "task" as const },
          { jti: "jti-planner-bbbbbbbbbb", exp: 2_000_000_000, role: "task" as const },
        ],
      });
      expect(mixed).toMatchObject({ replayed: true });
      // the fresh id was not spent by the refused run
      expect(
        await ledger.append(withTask(5, "jti-fresh-cccccccccccc"), { consume: [{ jti: "jti-fresh-cccccccccccc", exp: 2_000_000_000, role: "task" as const }] }),
      ).toMatchObject({
        replayed: false,
      });
    });

    it("forgets ids long after they expired, when a verifier would refuse the task anyway", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-tasks");
      const longGone = Math.floor(Date.now() / 1000) - 3600;
      await ledger.append(withTask(6, "jti-expired-dddddddddd"), { consume: [{ jti: "jti-expired-dddddddddd", exp: longGone, role: "task" as const }] });
      expect(
        await ledger.append(withTask(7, "jti-expired-dddddddddd"), { consume: [{ jti: "jti-expired-dddddddddd", exp: longGone, role: "task" as const }] }),
      ).toMatchObject({ replayed: false });
    });
  });

  describe("hardening", () => {
    it("refuses a record that belongs to another tenant's ledger", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-owned");
      await appendOk(ledger, started(1, "acme", "s-owned"));
      expect(await ledger.append(started(2, "globex", "s-owned"))).toMatchObject({ ok: false, reason: "foreign_ledger" });
      expect(await ledger.count()).toBe(1);
    });

    it("refuses a malformed record", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-malformed");
      expect(await ledger.append({ ...started(1), codeSha256: "not-a-hash" } as EvidenceEntry)).toMatchObject({ ok: false, reason: "malformed_entry" });
      expect(await ledger.page(0, 100_000)).toMatchObject({ ok: false, reason: "bad_page_request" });
      expect(await ledger.count()).toBe(0);
    });
  });
});

describe("hash chain", () => {
  it("links every record to the one before it, from the session's genesis to the head", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-chain");
    const first = await appendOk(ledger, { ...started(1), session: "s-chain" });
    await appendOk(ledger, { ...finished(1, first.seq), session: "s-chain" });
    await appendOk(ledger, { ...started(2), session: "s-chain" });
    const { records } = await pageOk(ledger, 0, 10);
    expect(records.map((r) => r.seq)).toEqual([1, 2, 3]);
    expect(records[0]?.prevHash).toBe(genesisHash("acme", "s-chain"));
    for (const [i, record] of records.entries()) {
      expect(record.hash).toBe(recordHash(record));
      if (i > 0) expect(record.prevHash).toBe(records[i - 1]?.hash);
    }
    expect(await ledger.head()).toEqual({ tenant: "acme", session: "s-chain", genesis: genesisHash("acme", "s-chain"), seq: 3, hash: records[2]?.hash });
    // a session's genesis is its own: the same records elsewhere would not link
    expect(genesisHash("acme", "s-chain")).not.toBe(genesisHash("globex", "s-chain"));
    expect(await ledgerFor(env.SESSION_LEDGER, "acme", "s-never").head()).toBeNull();
  });

  it("refuses, in storage itself, to change or remove a record", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-append-only");
    await appendOk(ledger, { ...started(1), session: "s-append-only" });
    await runInDurableObject(ledger, (_instance, state) => {
      expect(() => state.storage.sql.exec("UPDATE records SET body = '{}'")).toThrow(/append-only/);
      expect(() => state.storage.sql.exec("DELETE FROM records")).toThrow(/append-only/);
    });
    expect(await ledger.count()).toBe(1);
  });

  it("chains, on first open, a ledger written before records were chained", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-legacy");
    const first = await appendOk(ledger, { ...started(1), session: "s-legacy" });
    await appendOk(ledger, { ...finished(1, first.seq), session: "s-legacy" });
    await appendOk(ledger, { ...started(2), session: "s-legacy" });
    const chained = (await pageOk(ledger, 0, 10)).records;
    const rechained = await runInDurableObject(ledger, async (_instance, state) => {
      // what an older version left behind: no links, no head, no list of open runs
      const sql = state.storage.sql;
      sql.exec("DROP TRIGGER records_no_update; DROP TRIGGER records_no_delete;");
      sql.exec("ALTER TABLE records DROP COLUMN prev_hash; ALTER TABLE records DROP COLUMN hash; DROP TABLE chain; DROP TABLE open_runs;");
      const reopened = new SessionLedger(state, env);
      const page = await reopened.page(0, 10);
      return { records: page.ok ? page.page.records : [], head: await reopened.head(), alarm: await state.storage.getAlarm() };
    });
    expect(rechained.records).toEqual(chained);
    expect(rechained.head?.hash).toBe(chained.at(-1)?.hash);
    // run 2 never finished: the rebuilt list of open runs armed the alarm for it
    expect(rechained.alarm).toBe(started(2).deadlineAt + 30_000);
  });
});

describe("reconciling runs that never finish", () => {
  const session = "s-alarm";
  const longAgo = Date.now() - 60_000;
  const past = (n: number): RunStarted => ({ ...started(n), session, deadlineAt: longAgo });

  it("arms an alarm with each start, and the alarm closes a run left open past its deadline as lost", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", session);
    const lost = await ledger.append(past(1), { reconcileGraceMs: 1_000 });
    const done = await appendOk(ledger, { ...started(2), session });
    await appendOk(ledger, { ...finished(2, done.seq), session });
    expect(lost.ok).toBe(true);
    const alarm = await runInDurableObject(ledger, (_instance, state) => state.storage.getAlarm());
    // due already (workerd sets an alarm in the past for now)
    expect(alarm).toBeLessThanOrEqual(Date.now());

    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    const { records } = await pageOk(ledger, 0, 10);
    const closing = records.at(-1);
    expect(closing).toMatchObject({
      kind: "run.finished",
      runId: runId(1),
      startSeq: 1,
      termination: "cancelled",
      error: { code: "run_lost" },
      reconciledBy: "ledger_alarm",
    });
    expect(records.filter((r) => r.kind === "run.finished" && r.runId === runId(2))).toHaveLength(1);
    // nothing is left open, so nothing is armed
    expect(await runInDurableObject(ledger, (_instance, state) => state.storage.getAlarm())).toBeNull();
  });

  it("keeps a finish that arrives after the ledger closed the run, marked late", async () => {
    const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-late");
    const start = await appendOk(ledger, { ...past(3), session: "s-late" }).then((r) => r.seq);
    const later = Date.now() + 3_600_000;
    await ledger.append({ ...past(4), session: "s-late", deadlineAt: later });
    expect(await runDurableObjectAlarm(ledger)).toBe(true);
    await appendOk(ledger, { ...finished(3, start), session: "s-late" });
    const finishes = (await pageOk(ledger, 0, 10)).records.filter((r) => r.kind === "run.finished");
    expect(finishes.map((r) => [r.runId, r.kind === "run.finished" && r.termination, r.kind === "run.finished" && r.late])).toEqual([
      [runId(3), "cancelled", undefined],
      [runId(3), "completed", true],
    ]);
    // run 4 is still within its deadline: the alarm is re-armed for it, not spent
    expect(await runInDurableObject(ledger, (_instance, state) => state.storage.getAlarm())).toBe(later + 30_000);
  });
});

describe("digests", () => {
  it("hashes UTF-8 text with SHA-256", async () => {
    expect(await sha256Hex("abc")).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("canonicalises JSON so key order does not change a digest", async () => {
    expect(canonicalJson({ b: 1, a: [true, { d: null, c: "x" }] })).toBe('{"a":[true,{"c":"x","d":null}],"b":1}');
    expect(await sha256Hex(canonicalJson({ x: 1, y: 2 }))).toBe(await sha256Hex(canonicalJson({ y: 2, x: 1 })));
    expect(canonicalJson(undefined)).toBe("null");
  });
});
