// A rollback trip reproduced: a tenant whose phase 1 rolls back when more than half of its
// runs fail (4 runs at least, over 10 minutes). Four failing runs later the budget object's
// alarm switches the phase off, new calls are refused with phase_rolled_back and run
// nothing, the trip is evidence with its figures, and an operator's explicit re-enable is too.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, errorOf, type McpSession } from "../helpers/mcp-clients.ts";

let server: LocalServer;
let agent: McpSession;
const AGENT = { tenant: "rollt", actor: "bot", session: "s-rollout" };
const OPERATOR = { tenant: "rollt", actor: "olga", session: "s-ops", roles: ["operator", "auditor"] };

beforeAll(async () => {
  const policy = {
    tenants: {
      rollt: {
        roles: ["operator", "auditor"],
        phases: [1],
        rollout: { "1": { rollback: [{ metric: "failure_rate", above: 0.5, windowMinutes: 10, minRuns: 4 }] } },
        teams: { all: { members: ["*"], grants: [{ contract: "read-only-analysis", maxDataClass: "internal", actions: ["read"] }] } },
      },
    },
  };
  server = await startLocalServer({ env: dataDirs({}, policy) });
  agent = await connectClient(CLIENT_KINDS[0], server.mcpUrl, await server.token(AGENT));
}, 120_000);

afterAll(async () => {
  await agent?.close();
  await server?.stop();
});

async function api(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${await server.token(OPERATOR)}`, "content-type": "application/json", ...init.headers },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("rollout rollback conditions", () => {
  it("switches the phase off when a condition trips, refuses new calls, and records the figures; an operator switches it on again", async () => {
    expect((await agent.callTool("analyze_readonly", { code: "export default () => 'healthy'" })).structuredContent).toMatchObject({
      termination: "completed",
    });
    for (let i = 0; i < 4; i++) {
      expect(errorOf(await agent.callTool("analyze_readonly", { code: `export default () => { throw new Error('broken ${i}'); }` })).code).toBe("code_threw");
    }
    const state = await until("the phase to roll back", async () => {
      const { body } = await api("/v1/rollout");
      return (body.rolledBack as unknown[]).length > 0 ? body : undefined;
    });
    // the alarm evaluates about a second after a run: 4 failed out of the 5 that ran (or 3 of 4, had it come sooner)
    expect(state.rolledBack).toEqual([
      { phase: 1, metric: "failure_rate", value: expect.any(Number), above: 0.5, windowMinutes: 10, runs: expect.any(Number), trippedAt: expect.any(String) },
    ]);
    const [trip] = state.rolledBack as Array<{ value: number; runs: number }>;
    expect(trip?.value).toBeGreaterThan(0.5);
    expect(trip?.runs).toBeGreaterThanOrEqual(4);

    const refused = await agent.callTool("analyze_readonly", { code: "export default () => { console.log('must not run'); return 1; }" });
    expect(errorOf(refused)).toMatchObject({ code: "phase_rolled_back", message: expect.stringContaining("phase 1") });
    expect(refused.structuredContent).toMatchObject({ termination: "denied", logs: [] });

    const governance = await api("/v1/sessions/governance/evidence");
    const trips = (governance.body.records as Array<{ kind: string; actor: string; rollout: Record<string, unknown> }>).filter(
      (r) => r.kind === "rollout.changed",
    );
    expect(trips).toEqual([
      expect.objectContaining({
        actor: "platform",
        rollout: expect.objectContaining({ phase: 1, action: "rolled_back", metric: "failure_rate", value: trip?.value, runs: trip?.runs }),
      }),
    ]);

    expect((await api("/v1/rollout/1/enable", { method: "POST", body: JSON.stringify({}) })).status).toBe(400);
    const enabled = await api("/v1/rollout/1/enable", { method: "POST", body: JSON.stringify({ reason: "fixed the upstream; verified by hand" }) });
    expect(enabled).toMatchObject({ status: 200, body: { phase: 1, reenabledBy: "olga", rolledBack: [] } });
    expect((await api("/v1/rollout/1/enable", { method: "POST", body: JSON.stringify({ reason: "again" }) })).status).toBe(409);
    expect((await agent.callTool("analyze_readonly", { code: "export default () => 'back'" })).structuredContent).toMatchObject({ result: "back" });
    const after = await api("/v1/sessions/governance/evidence");
    expect((after.body.records as Array<{ kind: string; actor: string; rollout: { action: string; reason?: string } }>).at(-1)).toMatchObject({
      kind: "rollout.changed",
      actor: "olga",
      rollout: { action: "reenabled", reason: "fixed the upstream; verified by hand" },
    });
  });
});
