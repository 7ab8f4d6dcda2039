import { describe, expect, it } from "vitest";
import { bundledCatalog } from "../../src/catalog/index.ts";
import type { Contract } from "../../src/contracts/index.ts";
import { buildTask } from "../../src/intent/index.ts";

const contracts = bundledCatalog().contracts;
const byId = (id: string) => contracts.find((c) => c.id === id) as Contract;
const meta = (contract: Contract) => ({
  runId: "run_00000000-0000-4000-8000-000000000002",
  receivedAt: 0,
  identity: { actor: "alice", tenant: "acme", session: "s-1", roles: [], expiresAt: 0 },
  contract,
});

describe("intake", () => {
  it("normalizes a call into a task with digests that ignore key order", async () => {
    const a = await buildTask(meta(byId("read-only-analysis")), { code: "export default () => 1", input: { x: 1, y: [2] } });
    const b = await buildTask(meta(byId("read-only-analysis")), { input: { y: [2], x: 1 }, code: "export default () => 1" });
    expect(a.ok && b.ok).toBe(true);
    if (!a.ok || !b.ok) return;
    expect(a.task.inputSha256).toBe(b.task.inputSha256);
    expect(a.task).toMatchObject({ lane: "interactive", codeBytes: 22, input: { x: 1, y: [2] }, dataClass: null });
  });

  it("keeps the declared data class", async () => {
    const result = await buildTask(meta(byId("read-only-analysis")), { code: "x", dataClass: "confidential" });
    expect(result.ok && result.task.dataClass).toBe("confidential");
  });

  it("hands the code {} when no input is sent", async () => {
    const result = await buildTask(meta(byId("read-only-analysis")), { code: "export default () => 1" });
    expect(result.ok && result.task.input).toEqual({});
  });

  it.each<[string, string, unknown, RegExp]>([
    ["code that is not a string", "read-only-analysis", { code: 42 }, /code: Invalid input/],
    ["an empty module", "read-only-analysis", { code: "" }, /must not be empty/],
    ["an unknown argument", "read-only-analysis", { code: "x", owner: "me" }, /unknown argument\(s\): owner/],
    ["arguments that are not an object", "read-only-analysis", "export default () => 1", /expected object/],
    ["input missing a required property", "privileged-change", { code: "x", input: { note: "no reason" } }, /reason/],
    ["input of the wrong type", "read-only-analysis", { code: "x", input: "text" }, /input schema/],
    ["code above the contract's size limit", "read-only-analysis", { code: "x".repeat(131_073) }, /131073 bytes/],
    ["input above the contract's size limit", "controlled-mutation", { code: "x", input: { blob: "y".repeat(70_000) } }, /at most 65536/],
    ["an unknown data class", "read-only-analysis", { code: "x", dataClass: "secret" }, /dataClass/],
  ])("rejects %s as invalid_arguments, digests included", async (_case, contractId, args, message) => {
    const result = await buildTask(meta(byId(contractId)), args);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe("invalid_arguments");
    expect(result.error.message).toMatch(message);
    expect(result.digests.codeSha256).toMatch(/^[0-9a-f]{64}$/);
  });
});
