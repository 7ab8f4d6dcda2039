// The batch lane end to end on the real server and its local Queue: POST /v1/batches, the
// consumer running tasks under the batch lane's own budget, results and evidence by batch id,
// and an interactive call of the same tenant unaffected by a batch that fills its lane.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { dataDirs } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient } from "../helpers/mcp-clients.ts";

let server: LocalServer;
const OWNER = { tenant: "acme", actor: "scheduler", session: "s-batch" };

beforeAll(async () => {
  const dirs = dataDirs(
    {},
    {
      tenants: {
        acme: {
          roles: ["auditor"],
          phases: [1],
          budget: { interactive: { maxInFlight: 2, queueMax: 0 }, batch: { maxInFlight: 2, queueMax: 0 }, downgradeInFlight: 0 },
          teams: { all: { members: ["*"], grants: [{ contract: "read-only-analysis", maxDataClass: "internal", actions: ["read"] }] } },
        },
      },
    },
  );
  server = await startLocalServer({ env: dirs });
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

async function api(
  path: string,
  init: RequestInit = {},
  who: Partial<typeof OWNER> & { roles?: string[] } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const token = await server.token({ ...OWNER, ...who });
  const response = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json", ...init.headers },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

type BatchView = {
  counts: { queued: number; running: number; done: number };
  terminations: Record<string, number>;
  tasks: Array<{
    index: number;
    state: string;
    runId: string;
    outcome: { termination: string; result?: unknown; budget?: { lane: string; outcome: string; queuedMs: number } };
  }>;
};

async function finished(batchId: string, tasks: number): Promise<BatchView> {
  return await until(
    `batch ${batchId} to finish`,
    async () => {
      const { body } = await api(`/v1/batches/${batchId}?limit=500`);
      const view = body as unknown as BatchView;
      return view.counts?.done === tasks ? view : undefined;
    },
    60_000,
  );
}

describe("batch lane", () => {
  it("runs every task of a batch through the queue on the batch lane, with results and evidence by batch id", async () => {
    const tasks = Array.from({ length: 12 }, (_, i) => ({ contract: "analyze_readonly", code: "export default (input) => input.n * 2", input: { n: i } }));
    const submitted = await api("/v1/batches", { method: "POST", body: JSON.stringify({ tasks }) });
    expect(submitted.status).toBe(202);
    expect(submitted.body).toMatchObject({ batchId: expect.stringMatching(/^batch_/), tasks: 12, session: "s-batch" });
    const batchId = submitted.body.batchId as string;

    const view = await finished(batchId, 12);
    expect(view.terminations).toEqual({ completed: 12 });
    for (const task of view.tasks) {
      expect(task.outcome).toMatchObject({ termination: "completed", result: task.index * 2, budget: { lane: "batch", outcome: "granted" } });
    }

    const evidence = await api(`/v1/batches/${batchId}/evidence?limit=500`);
    const records = evidence.body.records as Array<{
      kind: string;
      runId: string;
      lane?: string;
      batch?: { id: string; index: number };
      intent?: { source: string };
    }>;
    expect(records).toHaveLength(24);
    const starts = records.filter((r) => r.kind === "run.started");
    expect(starts.every((r) => r.lane === "batch" && r.batch?.id === batchId && r.intent?.source === "batch")).toBe(true);
    expect(new Set(starts.map((r) => r.batch?.index))).toEqual(new Set(view.tasks.map((t) => t.index)));
  });

  it("keeps the interactive lane free while a batch fills the batch lane", async () => {
    const slow = Array.from({ length: 6 }, () => ({
      contract: "read-only-analysis",
      code: "export default () => new Promise((r) => setTimeout(() => r('slow'), 700))",
    }));
    const submitted = await api("/v1/batches", { method: "POST", body: JSON.stringify({ tasks: slow }) });
    const batchId = submitted.body.batchId as string;
    await until("the batch to start", async () => {
      const { body } = await api(`/v1/batches/${batchId}`);
      return (body as unknown as BatchView).counts.running > 0 ? true : undefined;
    });
    const agent = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token({ tenant: "acme", actor: "alice", session: "s-interactive" }));
    const result = await agent.callTool("analyze_readonly", { code: "export default () => 'interactive'" });
    await agent.close();
    expect(result.structuredContent).toMatchObject({
      termination: "completed",
      result: "interactive",
      budget: { lane: "interactive", outcome: "granted", queuedMs: 0 },
    });
    const view = await finished(batchId, 6);
    expect(view.terminations).toEqual({ completed: 6 });
    // the batch lane never ran more than its budget of 2 at once: 6 tasks of 700 ms took at least three rounds
    const queued = view.tasks.map((t) => t.outcome.budget?.queuedMs ?? 0).sort((a, b) => a - b);
    expect(queued.at(-1)).toBeGreaterThanOrEqual(1_000);
  });

  it.each([
    ["an unknown contract", { tasks: [{ contract: "nope", code: "export default () => 1" }] }, "tasks[0].contract"],
    ["a task without code", { tasks: [{ contract: "analyze_readonly" }] }, "tasks[0].code"],
    ["no tasks", { tasks: [] }, "tasks"],
    ["too many tasks", { tasks: Array.from({ length: 1_001 }, () => ({ contract: "analyze_readonly", code: "x" })) }, "tasks"],
  ])("refuses %s with a typed 400 naming the field", async (_case, body, field) => {
    const response = await api("/v1/batches", { method: "POST", body: JSON.stringify(body) });
    expect(response.status).toBe(400);
    expect(response.body).toMatchObject({ error: { code: "bad_request", message: expect.stringContaining(field) } });
  });

  it("shows a batch to its submitter and the tenant's auditors only", async () => {
    const submitted = await api("/v1/batches", {
      method: "POST",
      body: JSON.stringify({ tasks: [{ contract: "analyze_readonly", code: "export default () => 1" }] }),
    });
    const path = `/v1/batches/${submitted.body.batchId as string}`;
    expect((await api(path, {}, { actor: "mallory" })).status).toBe(404);
    expect((await api(path, {}, { actor: "audrey", roles: ["auditor"] })).status).toBe(200);
    expect((await api(path, {}, { tenant: "globex", roles: ["auditor"] })).status).toBe(404);
  });
});
