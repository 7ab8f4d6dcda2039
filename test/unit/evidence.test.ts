import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { canonicalJson, type EvidenceEntry, ledgerFor, type RunStarted, sha256Hex } from "../../src/evidence/index.ts";

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
      const first = await ledger.append(withTask(1, "jti-once-aaaaaaaaaaaa"), [{ jti: "jti-once-aaaaaaaaaaaa", exp: 2_000_000_000, role: "task" as const }]);
      expect(first).toMatchObject({ ok: true, replayed: false });
      const again = await ledger.append(withTask(2, "jti-once-aaaaaaaaaaaa"), [{ jti: "jti-once-aaaaaaaaaaaa", exp: 2_000_000_000, role: "task" as const }]);
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
      await ledger.append(planned(8, "fresh-one-eeeeeeeeeeeee"), [
        { jti: "planner:p:plan-1", exp: 2_000_000_000, role: "intent" },
        { jti: "policy:fresh-one-eeeeeeeeeeeee", exp: 2_000_000_000, role: "task" },
      ]);
      await ledger.append(planned(9, "fresh-two-ffffffffffff"), [
        { jti: "planner:p:plan-1", exp: 2_000_000_000, role: "intent" },
        { jti: "policy:fresh-two-ffffffffffff", exp: 2_000_000_000, role: "task" },
      ]);
      const page = await pageOk(ledger, 0, 100);
      const last = page.records.at(-1);
      expect(last?.kind === "run.started" && [last.intent.source === "planner" && last.intent.verdict, last.task?.verdict]).toEqual([
        "task_replayed",
        "accepted",
      ]);
    });

    it("spends all of a run's ids or none", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-tasks");
      await ledger.append(withTask(3, "jti-planner-bbbbbbbbbb"), [{ jti: "jti-planner-bbbbbbbbbb", exp: 2_000_000_000, role: "task" as const }]);
      const mixed = await ledger.append(withTask(4, "jti-fresh-cccccccccccc"), [
        { jti: "jti-fresh-cccccccccccc", exp: 2_000_000_000, role: "task" as const },
        { jti: "jti-planner-bbbbbbbbbb", exp: 2_000_000_000, role: "task" as const },
      ]);
      expect(mixed).toMatchObject({ replayed: true });
      // the fresh id was not spent by the refused run
      expect(
        await ledger.append(withTask(5, "jti-fresh-cccccccccccc"), [{ jti: "jti-fresh-cccccccccccc", exp: 2_000_000_000, role: "task" as const }]),
      ).toMatchObject({
        replayed: false,
      });
    });

    it("forgets ids long after they expired, when a verifier would refuse the task anyway", async () => {
      const ledger = ledgerFor(env.SESSION_LEDGER, "acme", "s-tasks");
      const longGone = Math.floor(Date.now() / 1000) - 3600;
      await ledger.append(withTask(6, "jti-expired-dddddddddd"), [{ jti: "jti-expired-dddddddddd", exp: longGone, role: "task" as const }]);
      expect(
        await ledger.append(withTask(7, "jti-expired-dddddddddd"), [{ jti: "jti-expired-dddddddddd", exp: longGone, role: "task" as const }]),
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
