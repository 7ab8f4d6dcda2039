import { runDurableObjectAlarm } from "cloudflare:test";
import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { type ApprovalAsk, deskFor } from "../../src/approval/index.ts";
import { ledgerFor } from "../../src/evidence/index.ts";

const ask = (overrides: Partial<ApprovalAsk> = {}): ApprovalAsk => ({
  key: "k".repeat(64),
  runId: "run_00000000-0000-4000-8000-00000000a001",
  tenant: "acme",
  requester: "alice",
  session: "s-desk",
  contract: { id: "privileged-change", version: "1.0.0", class: "privileged" },
  codeSha256: "a".repeat(64),
  inputSha256: "b".repeat(64),
  policyHash: "c".repeat(64),
  dataClass: "confidential",
  team: "sre",
  plan: null,
  code: "export default () => 1",
  inputJson: "{}",
  ttlMs: 60_000,
  ...overrides,
});

describe("approval desk", () => {
  it("uses an approval once, and gives it back when the run that spent it did not start", async () => {
    const desk = deskFor(env.APPROVALS, "acme");
    const opened = await desk.gate(ask({ key: "once" }));
    expect(opened).toMatchObject({ outcome: "pending", created: true });
    expect(await desk.decide(opened.id, { actor: "bob", roles: ["approver"] }, "approved", "ok")).toMatchObject({ ok: true });
    expect(await desk.gate(ask({ key: "once", runId: "run_00000000-0000-4000-8000-00000000a002" }))).toMatchObject({ outcome: "approved", id: opened.id });
    expect(await desk.gate(ask({ key: "once", runId: "run_00000000-0000-4000-8000-00000000a003" }))).toMatchObject({ outcome: "pending", created: true });
    expect(await desk.restore(opened.id, "run_00000000-0000-4000-8000-00000000a002")).toBe(true);
    expect((await desk.get(opened.id))?.state).toBe("approved");
  });

  it("refuses a decision by the requester, by someone without the approver role, and on a decided request", async () => {
    const desk = deskFor(env.APPROVALS, "acme");
    const opened = await desk.gate(ask({ key: "eyes" }));
    expect(await desk.decide(opened.id, { actor: "alice", roles: ["approver"] }, "approved", "mine")).toMatchObject({ ok: false, code: "four_eyes" });
    expect(await desk.decide(opened.id, { actor: "carol", roles: [] }, "approved", "x")).toMatchObject({ ok: false, code: "not_approver" });
    expect(await desk.decide(opened.id, { actor: "bob", roles: ["approver"] }, "rejected", "no")).toMatchObject({ ok: true });
    expect(await desk.decide(opened.id, { actor: "bob", roles: ["approver"] }, "approved", "yes")).toMatchObject({ ok: false, code: "not_pending" });
  });

  it("expires a request nobody decided, by alarm, and records the expiry in the requester's session", async () => {
    const desk = deskFor(env.APPROVALS, "acme");
    const opened = await desk.gate(ask({ key: "expiring", session: "s-desk-expiry", ttlMs: 30 }));
    await new Promise((resolve) => setTimeout(resolve, 60));
    await runDurableObjectAlarm(desk);
    const page = await ledgerFor(env.SESSION_LEDGER, "acme", "s-desk-expiry").page(0, 10);
    const records = page.ok ? page.page.records : [];
    expect(records).toEqual([
      expect.objectContaining({ kind: "approval.decided", actor: "platform", approval: expect.objectContaining({ id: opened.id, verdict: "expired" }) }),
    ]);
    expect((await desk.get(opened.id))?.state).toBe("expired");
    // the same task again opens a new request
    expect(await desk.gate(ask({ key: "expiring", session: "s-desk-expiry" }))).toMatchObject({ outcome: "pending", created: true });
  });
});
