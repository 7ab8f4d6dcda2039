// The human gate end to end with a real MCP client: a privileged call opens an approval
// request bound to the exact task and runs nothing; the requester cannot approve it; an
// approver of the same tenant can; the same call then runs once; any change needs a new
// approval; a rejection is final for its request. Every step is in the session's evidence,
// and the session still exports as a bundle that verifies.
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { verifyBundle } from "../../src/evidence/verify-bundle.ts";
import type { LocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, errorOf, type McpSession } from "../helpers/mcp-clients.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
let alice: McpSession;
const ALICE = { tenant: "acme", actor: "alice", session: "s-change", roles: ["operator", "approver"] };
const BOB = { tenant: "acme", actor: "bob", session: "s-bob", roles: ["approver"] };
const CODE = "export default (input) => 'changed: ' + input.reason";

beforeAll(async () => {
  server = await sharedServer();
  alice = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token(ALICE));
}, 120_000);

afterAll(async () => {
  await alice?.close();
  await server?.stop();
});

async function api(path: string, who: typeof ALICE, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${await server.token(who)}`, "content-type": "application/json", ...init.headers },
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}
const decide = (id: string, who: typeof ALICE, decision: string, reason: string) =>
  api(`/v1/approvals/${id}`, who, { method: "POST", body: JSON.stringify({ decision, reason }) });

async function askFor(input: Record<string, unknown>): Promise<{ id: string; url: string }> {
  const result = await alice.callTool("change_privileged", { code: CODE, input });
  expect(result.isError).toBe(true);
  const error = errorOf(result);
  expect(error.code).toBe("approval_required");
  const url = /(http:\/\/[^ ]+\/approvals\/(apr_[0-9a-f-]{36}))/.exec(error.hint);
  if (!url?.[1] || !url[2]) throw new Error(`no approval URL in ${error.hint}`);
  return { url: url[1], id: url[2] };
}

describe("approval over MCP 2026-07-28 (input_required)", () => {
  it("asks a client that can open a URL with input_required; once approved, its retry runs exactly that task, once; a changed byte needs a new approval", async () => {
    const asked: Array<{ url: string; id: string }> = [];
    const client = new ClientV2(
      { name: "agent-exec-tests", version: "2.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } }, capabilities: { elicitation: { url: {} } } },
    );
    // the person behind the client: opens the page, and an approver (bob) approves what it shows
    client.setRequestHandler("elicitation/create", async (request) => {
      const params = request.params as { mode?: string; url?: string };
      const id = /\/approvals\/(apr_[0-9a-f-]{36})$/.exec(params.url ?? "")?.[1] ?? "";
      asked.push({ url: params.url ?? "", id });
      expect(params.mode).toBe("url");
      expect((await fetch(params.url ?? "")).status).toBe(200);
      expect((await decide(id, BOB, "approve", "change window CHG-42")).status).toBe(200);
      return { action: "accept" };
    });
    await client.connect(
      new TransportV2(server.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${await server.token({ ...ALICE, session: "s-mrtr" })}` } } }),
    );
    try {
      const input = { reason: "rotate through MRTR" };
      const first = await client.callTool({ name: "change_privileged", arguments: { code: CODE, input } });
      expect(first.isError).toBeFalsy();
      expect(first.structuredContent).toMatchObject({ termination: "completed", result: "changed: rotate through MRTR" });
      expect(asked).toHaveLength(1);
      const [{ id } = { id: "" }] = asked;
      expect(asked[0]?.url).toBe(`${server.url}/approvals/${id}`);
      // spent by exactly that run
      const runId = (first.structuredContent as { runId: string }).runId;
      expect((await api(`/v1/approvals/${id}`, BOB)).body).toMatchObject({ state: "used", usedByRun: runId });

      // one byte more in the code: a new approval round, a new request
      const second = await client.callTool({ name: "change_privileged", arguments: { code: `${CODE} `, input } });
      expect(second.structuredContent).toMatchObject({ termination: "completed" });
      expect(asked).toHaveLength(2);
      expect(asked[1]?.id).not.toBe(id);
    } finally {
      await client.close();
    }
  });

  it("refuses a retry whose requestState names another task, running nothing", async () => {
    const token = await server.token({ ...ALICE, session: "s-mrtr-forged" });
    const response = await fetch(server.mcpUrl, {
      method: "POST",
      headers: {
        authorization: `Bearer ${token}`,
        "content-type": "application/json",
        accept: "application/json, text/event-stream",
        "mcp-protocol-version": "2026-07-28",
        "mcp-method": "tools/call",
        "mcp-name": "change_privileged",
      },
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 7,
        method: "tools/call",
        params: {
          name: "change_privileged",
          arguments: { code: CODE, input: { reason: "not what was approved" } },
          requestState: `apr_00000000-0000-4000-8000-000000000000.${"a".repeat(64)}.${"b".repeat(64)}`,
          inputResponses: { approval: { action: "accept" } },
          _meta: {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": { name: "forger", version: "1" },
            "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } },
          },
        },
      }),
    });
    const text = await response.text();
    expect(text).toContain("requestState names another task");
    expect(text).not.toContain("changed: not what was approved");
  });
});

describe("approval gate", () => {
  it("runs a privileged task only once a different person approved exactly it, and only once", async () => {
    const { id, url } = await askFor({ reason: "rotate credentials" });
    expect(url).toBe(`${server.url}/approvals/${id}`);
    const page = await fetch(url);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(`data-approval="${id}"`);

    // asking again before anyone decided finds the same request
    expect((await askFor({ reason: "rotate credentials" })).id).toBe(id);

    // four eyes: the requester cannot approve, an approver of another tenant cannot see it
    expect(await decide(id, ALICE, "approve", "looks fine to me")).toMatchObject({ status: 403, body: { error: { code: "forbidden" } } });
    expect((await decide(id, { ...BOB, tenant: "globex" }, "approve", "x")).status).toBe(404);

    const pending = await api("/v1/approvals?state=pending", BOB);
    expect((pending.body.approvals as Array<{ id: string }>).map((a) => a.id)).toContain(id);
    const shown = await api(`/v1/approvals/${id}`, BOB);
    expect(shown.body).toMatchObject({ state: "pending", requester: "alice", contract: { id: "privileged-change" }, code: CODE });
    expect(JSON.parse(shown.body.inputJson as string)).toEqual({ reason: "rotate credentials" });

    expect(await decide(id, BOB, "approve", "planned maintenance window")).toMatchObject({ status: 200, body: { state: "approved", decidedBy: "bob" } });
    expect((await decide(id, BOB, "reject", "changed my mind")).status).toBe(409);

    const ran = await alice.callTool("change_privileged", { code: CODE, input: { reason: "rotate credentials" } });
    expect(ran.structuredContent).toMatchObject({ termination: "completed", result: "changed: rotate credentials" });
    expect((await api(`/v1/approvals/${id}`, BOB)).body).toMatchObject({ state: "used", usedByRun: (ran.structuredContent as { runId: string }).runId });

    // used once: the same task again needs a new approval
    const again = await askFor({ reason: "rotate credentials" });
    expect(again.id).not.toBe(id);
  });

  it("needs a new approval for any change, and refuses a rejected task with the approver's reason", async () => {
    const first = await askFor({ reason: "resize the cluster" });
    const changed = await askFor({ reason: "resize the cluster to 12 nodes" });
    expect(changed.id).not.toBe(first.id);
    expect(await decide(first.id, BOB, "reject", "not during the freeze")).toMatchObject({ status: 200, body: { state: "rejected" } });
    const refused = await alice.callTool("change_privileged", { code: CODE, input: { reason: "resize the cluster" } });
    expect(errorOf(refused)).toMatchObject({ code: "approval_rejected", message: expect.stringContaining("not during the freeze") });
    // one byte of code more is another task too
    const otherCode = await alice.callTool("change_privileged", { code: `${CODE} `, input: { reason: "resize the cluster" } });
    expect(errorOf(otherCode).code).toBe("approval_required");
  });

  it("tells a 2025-era client that declared URL-mode elicitation with the protocol's own error, pointing at the page", async () => {
    const who = { ...ALICE, session: "s-elicit" };
    const client = new Client({ name: "elicit-capable", version: "1.0.0" }, { capabilities: { elicitation: { url: {} } } });
    await client.connect(
      new StreamableHTTPClientTransport(server.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${await server.token(who)}` } } }),
    );
    const call = () => client.callTool({ name: "change_privileged", arguments: { code: CODE, input: { reason: "open the firewall" } } });
    const error = (await call().then(
      () => null,
      (e: unknown) => e,
    )) as { code?: number; data?: { elicitations?: Array<{ mode: string; url: string; elicitationId: string }> } } | null;
    expect(error?.code).toBe(-32042);
    const elicitation = error?.data?.elicitations?.[0];
    expect(elicitation).toMatchObject({ mode: "url", url: expect.stringMatching(new RegExp(`^${server.url}/approvals/apr_`)) });
    // nothing ran, and the request is there to approve; once approved, the same call runs
    expect(await decide(elicitation?.elicitationId ?? "", BOB, "approve", "change ticket 77")).toMatchObject({ status: 200 });
    expect((await call()).structuredContent).toMatchObject({ termination: "completed", result: "changed: open the firewall" });
    await client.close();
    // a client that declared nothing still gets the tool error (the earlier tests)
  });

  it("records every step in the session's evidence, which still verifies", async () => {
    const records = (await api("/v1/sessions/s-change/evidence?limit=500", ALICE)).body.records as Array<Record<string, unknown>>;
    const states = records.filter((r) => r.kind === "run.started").map((r) => (r.approval as { state: string }).state);
    expect(states).toEqual(expect.arrayContaining(["requested", "pending", "used", "rejected"]));
    const decided = records.filter((r) => r.kind === "approval.decided");
    expect(decided.map((r) => [r.actor, (r.approval as { verdict: string }).verdict])).toEqual([
      ["bob", "approved"],
      ["bob", "rejected"],
    ]);
    const used = records.find((r) => r.kind === "run.started" && (r.approval as { state: string }).state === "used");
    expect(used?.approval).toMatchObject({ decidedBy: "bob", reason: "planned maintenance window" });

    const bundle = (await api("/v1/sessions/s-change/export", ALICE)).body;
    const jwks = await (await fetch(`${server.url}/.well-known/jwks.json`)).json();
    const report = await verifyBundle(bundle, { jwks });
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
  });
});
