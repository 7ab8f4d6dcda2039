import { createHash } from "node:crypto";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DataClass } from "../../src/contracts/index.ts";
import { decide, type PolicySnapshot } from "../../src/policy/index.ts";
import { type LocalServer, newStateDir, ROOT, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, errorOf, type ToolCallResult } from "../helpers/mcp-clients.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
beforeAll(async () => {
  server = await sharedServer();
});
afterAll(async () => {
  await server?.stop();
});

const CODE = "export default () => 'ran'";

async function call(
  identity: { tenant: string; actor: string; roles?: string[]; session?: string },
  tool: string,
  args: Record<string, unknown>,
): Promise<ToolCallResult> {
  const session = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token(identity));
  try {
    return await session.callTool(tool, args);
  } finally {
    await session.close();
  }
}

async function evidenceOf(identity: { tenant: string; actor: string; session: string }): Promise<Array<Record<string, unknown>>> {
  const response = await fetch(`${server.url}/v1/sessions/${identity.session}/evidence`, {
    headers: { authorization: `Bearer ${await server.token(identity)}` },
  });
  return ((await response.json()) as { records: Array<Record<string, unknown>> }).records;
}

describe("policy over MCP", () => {
  it.each<[string, { tenant: string; actor: string; roles?: string[] }, string, Record<string, unknown>, string[]]>([
    ["a tenant without the grant", { tenant: "globex", actor: "gina" }, "mutate_controlled", { code: CODE }, ["contract_not_granted", "phase_not_enabled"]],
    [
      "a data class above the grant (undeclared = the contract's default, internal)",
      { tenant: "globex", actor: "gina" },
      "analyze_readonly",
      { code: CODE },
      ["data_class_not_allowed"],
    ],
    [
      "a declared data class above the grant and the contract",
      { tenant: "acme", actor: "alice" },
      "analyze_readonly",
      { code: CODE, dataClass: "restricted" },
      ["data_class_not_allowed", "data_class_above_contract"],
    ],
    [
      "a grant that needs a role the token lacks",
      { tenant: "acme", actor: "alice" },
      "change_privileged",
      { code: CODE, input: { reason: "x" } },
      ["role_missing"],
    ],
    ["a tenant the policy does not know", { tenant: "initech", actor: "peter" }, "analyze_readonly", { code: CODE }, ["tenant_unknown"]],
  ])("denies %s with policy_denied, the reasons and a hint, and runs nothing", async (_case, identity, tool, args, reasons) => {
    const result = await call(identity, tool, args);
    expect(result.isError).toBe(true);
    const error = errorOf(result);
    expect(error.code).toBe("policy_denied");
    expect(error.message).toContain(reasons.join(", "));
    expect(error.hint.length).toBeGreaterThan(20);
    expect(result.structuredContent).toMatchObject({
      termination: "denied",
      decision: { outcome: "deny", reasons },
      policyHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });

  it("allows the same tenant once it declares a class its grant covers", async () => {
    const result = await call({ tenant: "globex", actor: "gina" }, "analyze_readonly", { code: CODE, dataClass: "public" });
    expect(result.structuredContent).toMatchObject({ termination: "completed", result: "ran", decision: { outcome: "allow", dataClass: "public" } });
  });

  it("records the decision and the policy hash on both records of a denied run", async () => {
    const identity = { tenant: "globex", actor: "gina", session: "s-denied" };
    await call(identity, "mutate_controlled", { code: CODE });
    const records = await evidenceOf(identity);
    expect(records.map((r) => r.kind)).toEqual(["run.started", "run.finished"]);
    for (const record of records) {
      expect(record).toMatchObject({
        policyHash: expect.stringMatching(/^[0-9a-f]{64}$/),
        decision: { outcome: "deny", reasons: ["contract_not_granted", "phase_not_enabled"] },
      });
    }
    expect(records[1]).toMatchObject({ termination: "denied", error: { code: "policy_denied" }, latencyMs: { start: null, exec: null } });
  });

  it("serves the exact snapshot an evidence record names, and replaying it gives the recorded decision", async () => {
    const identity = { tenant: "acme", actor: "alice", session: "s-replay" };
    await call(identity, "analyze_readonly", { code: CODE, dataClass: "confidential" });
    await call(identity, "analyze_readonly", { code: CODE, dataClass: "restricted" });
    const starts = (await evidenceOf(identity)).filter((r) => r.kind === "run.started");
    expect(starts).toHaveLength(2);
    for (const record of starts) {
      const hash = record.policyHash as string;
      const response = await fetch(`${server.url}/v1/policy/${hash}`, { headers: { authorization: `Bearer ${await server.token(identity)}` } });
      expect(response.status).toBe(200);
      const body = await response.text();
      expect(createHash("sha256").update(body).digest("hex")).toBe(hash);
      const snapshot = JSON.parse(body) as PolicySnapshot;
      expect(snapshot.tenant).toBe("acme");
      const decision = record.decision as { dataClass: DataClass };
      const replayed = decide({ tenant: "acme", actor: "alice", roles: [], contractId: "read-only-analysis", dataClass: decision.dataClass }, snapshot);
      expect(replayed).toEqual(record.decision);
    }
  });

  it("answers another tenant's request for a snapshot with 404", async () => {
    const identity = { tenant: "acme", actor: "alice", session: "s-replay" };
    const [record] = await evidenceOf(identity);
    const response = await fetch(`${server.url}/v1/policy/${record?.policyHash}`, {
      headers: { authorization: `Bearer ${await server.token({ tenant: "globex", actor: "gina", roles: ["auditor"] })}` },
    });
    expect(response.status).toBe(404);
  });
});

describe("policy history", () => {
  it("gives a changed policy a new hash while runs already recorded keep resolving to the old one", async () => {
    const stateDir = newStateDir();
    const identity = { tenant: "acme", actor: "alice", session: "s-history" };
    const before = await startLocalServer({ stateDir });
    let oldHash: string;
    try {
      const session = await connectClient(CLIENT_KINDS[0], before.mcpUrl, await before.token(identity));
      expect((await session.callTool("analyze_readonly", { code: CODE, dataClass: "confidential" })).structuredContent).toMatchObject({
        termination: "completed",
      });
      await session.close();
      oldHash =
        (
          (await (
            await fetch(`${before.url}/v1/sessions/s-history/evidence`, { headers: { authorization: `Bearer ${await before.token(identity)}` } })
          ).json()) as { records: Array<{ policyHash: string }> }
        ).records[0]?.policyHash ?? "";
    } finally {
      await before.stop();
    }

    const after = await startLocalServer({ stateDir, env: { POLICY_DIR: join(ROOT, "test/fixtures/policy-changed") } });
    try {
      const token = await after.token(identity);
      const session = await connectClient(CLIENT_KINDS[0], after.mcpUrl, token);
      const denied = await session.callTool("analyze_readonly", { code: CODE, dataClass: "confidential" });
      await session.close();
      expect(denied.structuredContent).toMatchObject({ termination: "denied", decision: { reasons: ["data_class_not_allowed"] } });
      const newHash = denied.structuredContent?.policyHash as string;
      expect(newHash).not.toBe(oldHash);

      const records = (
        (await (await fetch(`${after.url}/v1/sessions/s-history/evidence`, { headers: { authorization: `Bearer ${token}` } })).json()) as {
          records: Array<{ policyHash: string }>;
        }
      ).records;
      expect(records.map((r) => r.policyHash)).toEqual([oldHash, oldHash, newHash, newHash]);
      for (const hash of [oldHash, newHash]) {
        const body = await (await fetch(`${after.url}/v1/policy/${hash}`, { headers: { authorization: `Bearer ${token}` } })).text();
        expect(createHash("sha256").update(body).digest("hex")).toBe(hash);
      }
    } finally {
      await after.stop();
    }
  });
});
