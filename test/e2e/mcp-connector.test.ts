// An upstream MCP server as a connector: a real MCP server on 127.0.0.1 (the MCP SDK's, in
// examples/local-notes.ts) and a real HTTP API (the local tracker), both described in
// connectors/, granted by one contract. Its tool list is pinned in the connector file (the
// real `connectors:pin` code); a run's code reads notes through the MCP server, computes and
// writes a comment through the HTTP API; each operation call is in the evidence. When the
// upstream changes its tools, calls are refused until the new list is pinned and in force as
// a new policy snapshot.
import { join } from "node:path";
import { Client as ClientV2, StreamableHTTPClientTransport as TransportV2 } from "@modelcontextprotocol/client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type NotesServer, startNotesServer } from "../../examples/local-notes.ts";
import { pinConnector } from "../../src/local/pin-connector.ts";
import { dataDirs } from "../helpers/data-dirs.ts";
import { type LocalServer, startLocalServer, until } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, errorOf, type McpSession } from "../helpers/mcp-clients.ts";
import { type HttpUpstream, startHttpUpstream } from "../helpers/upstreams.ts";

const NOTES_TOKEN = "notes-upstream-token-4b8e1f6a2c9d3e7b";
const TRACKER_TOKEN = "tracker-api-token-9c2e5a7f1b3d8e4c";

const NOTES_CONNECTOR = {
  name: "notes",
  description: "The team's notes (an MCP server).",
  kind: "mcp",
  url: "https://notes.example.test/mcp",
  operations: {
    searchNotes: { tool: "search_notes", effect: "read" },
    createNote: { tool: "create_note", effect: "mutate" },
    deleteNote: { tool: "delete_note", effect: "privileged" },
  },
};

const TRACKER_CONNECTOR = {
  name: "tracker",
  description: "The issue tracker's API.",
  kind: "http",
  baseUrl: "https://tracker.example.test/",
  operations: {
    addComment: {
      description: "Comments on an issue.",
      effect: "mutate",
      method: "POST",
      path: "issues/{id}/comments",
      arguments: {
        type: "object",
        properties: { id: { type: "string", pattern: "^[A-Z]+-[0-9]+$" }, body: { type: "string", maxLength: 2000 } },
        required: ["id", "body"],
        additionalProperties: false,
      },
    },
  },
};

const CONTRACT = {
  id: "notes-triage",
  version: "1.0.0",
  tool: "triage_from_notes",
  title: "Triage from notes",
  description: "Reads the team's notes and comments on issues.",
  class: "controlled-mutation",
  phase: 2,
  inputSchema: { type: "object" },
  limits: { wallMs: 8000, subRequests: 20 },
  actions: ["notes.read", "tracker.mutate"],
  connectors: [
    { connector: "notes", operations: ["searchNotes"] },
    { connector: "tracker", operations: ["addComment"] },
  ],
  egress: [
    {
      host: "notes.example.test",
      protocol: "https",
      methods: ["POST"],
      paths: ["/mcp"],
      capability: "connector:notes",
      inject: { header: "authorization", secret: "EGRESS_NOTES_TOKEN", format: "Bearer {secret}" },
    },
    {
      host: "tracker.example.test",
      protocol: "https",
      methods: ["POST"],
      paths: ["/issues/"],
      capability: "connector:tracker",
      inject: { header: "authorization", secret: "EGRESS_TRACKER_TOKEN", format: "Bearer {secret}" },
    },
  ],
};

const CODE = `export default async (input, ctx) => {
  const { notes } = await ctx.env.notes.searchNotes({ query: input.issue });
  const runbooks = [...new Set(notes.flatMap((note) => note.body.match(/INV-[0-9]+/g) ?? []))];
  await ctx.env.tracker.addComment({ id: input.issue, body: \`\${notes.length} notes; runbooks: \${runbooks.join(", ")}\` });
  return { notes: notes.length, runbooks, createNote: typeof ctx.env.notes.createNote };
};`;

/** Notes clean-up: reads, writes and deletes notes; each delete (privileged) pauses the run for an approval of that call. */
const CLEANUP_CONTRACT = {
  ...CONTRACT,
  id: "notes-cleanup",
  tool: "clean_up_notes",
  title: "Clean up notes",
  description: "Archives and deletes the team's notes.",
  actions: ["notes.read", "notes.mutate", "notes.privileged"],
  connectors: [{ connector: "notes", operations: ["searchNotes", "createNote", "deleteNote"] }],
  egress: [CONTRACT.egress[0]],
};

/** Reads, writes an archive note (a side effect before the pause), then deletes what it found (each delete needs approval). */
const CLEANUP_CODE = `export default async (input, ctx) => {
  const { notes } = await ctx.env.notes.searchNotes({ query: input.query });
  const { id: archive } = await ctx.env.notes.createNote({ title: "archive " + input.query, body: notes.map((n) => n.title).join("; ") });
  for (const note of notes) await ctx.env.notes.deleteNote({ id: note.id });
  return { archived: archive, deleted: notes.map((n) => n.id) };
};`;

type Call = {
  capability: string;
  method: string;
  decision: string;
  reason: string | null;
  status?: number | null;
  argsSha256?: string;
  args?: string;
  approvalId?: string;
};
type Finished = {
  kind: string;
  runId: string;
  policyHash: string;
  activity?: { capabilities: { calls: Call[] }; egress?: { requests: Array<{ host: string; via?: string }> } };
};

let notes: NotesServer;
let tracker: HttpUpstream;
let connectorsDir: string;
let notesOrigin: string;
let server: LocalServer;
let session: McpSession;

beforeAll(async () => {
  notes = await startNotesServer({
    token: NOTES_TOKEN,
    notes: [
      { id: "n1", title: "OPS-42 timeouts", body: "Inventory timeouts since 09:10; runbook INV-7." },
      { id: "n2", title: "OPS-42 follow-up", body: "Same as INV-7, also INV-9." },
      { id: "n3", title: "Lunch", body: "Pizza." },
      { id: "n4", title: "Stale draft", body: "old" },
      { id: "n5", title: "Obsolete memo", body: "old" },
    ],
  });
  tracker = await startHttpUpstream(TRACKER_TOKEN);
  const dirs = dataDirs(
    { "notes-triage": CONTRACT, "notes-cleanup": CLEANUP_CONTRACT },
    {
      tenants: {
        acme: {
          phases: [1, 2],
          teams: {
            ops: {
              members: ["*"],
              grants: [
                { contract: "notes-triage", maxDataClass: "internal" },
                { contract: "notes-cleanup", maxDataClass: "internal" },
              ],
            },
          },
        },
      },
    },
    { notes: NOTES_CONNECTOR, tracker: TRACKER_CONNECTOR },
  );
  connectorsDir = dirs.CONNECTORS_DIR;
  notesOrigin = `http://127.0.0.1:${notes.port}`;
  const resolveMap = { "notes.example.test": notesOrigin, "tracker.example.test": `http://127.0.0.1:${tracker.port}` };
  // the connector file is pinned by the same code `npm run connectors:pin` runs
  const pinned = await pinConnector(join(connectorsDir, "notes.json"), { bearer: NOTES_TOKEN, resolveMap });
  expect(pinned.tools).toBe(3);
  expect(pinned.sha256).toMatch(/^[0-9a-f]{64}$/);
  server = await startLocalServer({
    env: { ...dirs, EGRESS_NOTES_TOKEN: NOTES_TOKEN, EGRESS_TRACKER_TOKEN: TRACKER_TOKEN, EGRESS_RESOLVE: JSON.stringify(resolveMap) },
  });
  session = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token({ tenant: "acme", actor: "alice", session: "s-mcp-connector" }));
}, 120_000);

afterAll(async () => {
  await session?.close();
  await server?.stop();
  await notes?.close();
  await tracker?.close();
});

async function finishedOf(runId: string): Promise<Finished | undefined> {
  const token = await server.token({ tenant: "acme", actor: "audit", session: "s-mcp-connector", roles: ["auditor"] });
  const response = await fetch(`${server.url}/v1/sessions/s-mcp-connector/evidence`, { headers: { authorization: `Bearer ${token}` } });
  const { records } = (await response.json()) as { records: Finished[] };
  return records.find((record) => record.kind === "run.finished" && record.runId === runId);
}

const run = (code: string, input: unknown = { issue: "OPS-42" }) => session.callTool("triage_from_notes", { code, input });

describe("an MCP server as a connector", () => {
  it("the tool's description declares the MCP tool's operations from the pinned schemas", async () => {
    const tool = (await session.listTools()).find((candidate) => candidate.name === "triage_from_notes");
    expect(tool?.description).toContain("declare const notes");
    expect(tool?.description).toContain("searchNotes(args: { query: string }): Promise<{ notes: Array<{ id: string; title: string; body: string }> }>");
    expect(tool?.description).toContain("declare const tracker");
    expect(tool?.description).not.toContain("createNote");
  });

  it("reads through the MCP server, computes, writes through the HTTP API; every operation call is recorded", async () => {
    const calls = notes.requests.length;
    const result = await run(CODE);
    const content = result.structuredContent as { runId: string; termination: string; result?: unknown; error?: unknown };
    expect(content.termination, JSON.stringify(content.error)).toBe("completed");
    expect(content.result).toEqual({ notes: 2, runbooks: ["INV-7", "INV-9"], createNote: "undefined" });
    // the upstream saw the pin check and the call, each with the injected credential (checked by the server)
    expect(notes.requests.slice(calls)).toEqual(["tools/list", "tools/call"]);
    const comment = tracker.seen.find((request) => request.method === "POST" && request.url === "/issues/OPS-42/comments");
    expect(comment?.headers.authorization).toBe(`Bearer ${TRACKER_TOKEN}`);
    expect(JSON.parse(comment?.body ?? "{}")).toEqual({ body: "2 notes; runbooks: INV-7, INV-9" });
    expect(JSON.stringify(result)).not.toContain(NOTES_TOKEN);

    const finished = await finishedOf(content.runId);
    const connectorCalls = finished?.activity?.capabilities.calls.filter((call) => call.capability.startsWith("connector:"));
    expect(connectorCalls?.map(({ capability, method, decision, status }) => ({ capability, method, decision, status }))).toEqual([
      { capability: "connector:notes", method: "searchNotes", decision: "allowed", status: 200 },
      { capability: "connector:tracker", method: "addComment", decision: "allowed", status: 201 },
    ]);
    expect(connectorCalls?.every((call) => /^[0-9a-f]{64}$/.test(call.argsSha256 ?? ""))).toBe(true);
  });

  it("an ungranted tool is absent from ctx.env, and a forged call to it is denied, recorded, and never reaches the upstream", async () => {
    const before = notes.effects.length;
    const result = await run(`export default async (input, ctx) => {
      const absent = ctx.env.notes.createNote === undefined;
      try { await ctx.env.notes.call("createNote", { title: "x", body: "y" }); return { absent, forged: "ran" }; }
      catch (error) { return { absent, forged: error.message }; }
    };`);
    const content = result.structuredContent as { runId: string; result: { absent: boolean; forged: string } };
    expect(content.result.absent).toBe(true);
    expect(content.result.forged).toMatch(/^\[operation_not_granted\]/);
    expect(notes.effects.length).toBe(before);
    const calls = (await finishedOf(content.runId))?.activity?.capabilities.calls ?? [];
    expect(calls).toContainEqual(
      expect.objectContaining({ capability: "connector:notes", method: "createNote", decision: "denied", reason: "operation_not_granted" }),
    );
  });

  it("records each call's arguments redacted (the digest is of the arguments as sent)", async () => {
    const result = await run(`export default async (input, ctx) => (await ctx.env.notes.searchNotes({ query: "${NOTES_TOKEN}" })).notes.length;`);
    const content = result.structuredContent as { runId: string; result: number };
    expect(content.result).toBe(0);
    const calls = (await finishedOf(content.runId))?.activity?.capabilities.calls ?? [];
    expect(calls).toContainEqual(expect.objectContaining({ method: "searchNotes", args: '{"query":"[REDACTED:platform_secret]"}' }));
    expect(JSON.stringify(calls)).not.toContain(NOTES_TOKEN);
  });

  it("drift against a declared plan counts operations: a call outside plan.operations is drift, the connector's own requests are not", async () => {
    const result = await session.callTool("triage_from_notes", {
      code: CODE,
      input: { issue: "OPS-42" },
      plan: { destinations: [], operations: ["notes.search*"] },
    });
    const content = result.structuredContent as { runId: string; termination: string };
    expect(content.termination).toBe("completed");
    const { activity } = (await finishedOf(content.runId)) as unknown as {
      activity: { capabilities: { calls: Array<Call & { drift?: boolean }>; drift?: number }; egress: { drift: number } };
    };
    expect(activity.capabilities.calls.map((call) => `${call.method} ${call.drift}`)).toEqual(["searchNotes false", "addComment true"]);
    expect(activity.capabilities.drift).toBe(1);
    expect(activity.egress.drift).toBe(0);
  });

  it("arguments the pinned schema refuses never leave", async () => {
    const calls = notes.requests.length;
    const result = await run(`export default async (input, ctx) => {
      try { await ctx.env.notes.searchNotes({ query: "" }); return "ran"; } catch (error) { return error.message; }
    };`);
    expect((result.structuredContent as { result: string }).result).toMatch(/^\[invalid_request\] notes\.searchNotes/);
    expect(notes.requests.length).toBe(calls);
  });

  it("an upstream that changes its tool list is refused until the new list is pinned and in force as a new snapshot", async () => {
    const first = (await run(CODE)).structuredContent as { runId: string; termination: string };
    expect(first.termination).toBe("completed");
    const policyBefore = (await finishedOf(first.runId))?.policyHash;

    notes.changeTools();
    const calls = notes.requests.length;
    const refused = await run(CODE);
    const error = errorOf(refused);
    expect(error.code).toBe("code_threw");
    expect(error.message).toMatch(/\[connector_changed\] notes's upstream tool list changed/);
    // the tool list was read; no tool was called
    expect(notes.requests.slice(calls)).toEqual(["tools/list"]);
    const refusedRun = (refused.structuredContent as { runId: string }).runId;
    expect((await finishedOf(refusedRun))?.activity?.capabilities.calls).toContainEqual(
      expect.objectContaining({ capability: "connector:notes", method: "searchNotes", decision: "denied", reason: "connector_changed" }),
    );

    // the operator reviews the change and pins it: the server restarts on the new connector file
    const pinned = await pinConnector(join(connectorsDir, "notes.json"), { bearer: NOTES_TOKEN, resolveMap: { "notes.example.test": notesOrigin } });
    expect(pinned).toMatchObject({ unchanged: false, added: ["export_notes"], changed: ["search_notes"], removed: [] });
    const after = await until(
      "the new pin in force",
      async () => {
        const again = (await run(CODE)).structuredContent as { runId: string; termination: string };
        return again.termination === "completed" ? again : undefined;
      },
      60_000,
    );
    const policyAfter = (await finishedOf(after.runId))?.policyHash;
    expect(policyAfter).toMatch(/^[0-9a-f]{64}$/);
    expect(policyAfter).not.toBe(policyBefore);
  }, 90_000);
});

describe("approval of a single call, mid-run, with replay", () => {
  const BOB = { tenant: "acme", actor: "bob", session: "s-bob", roles: ["approver"] };
  const decide = async (id: string, decision: "approve" | "reject", reason: string) => {
    const token = await server.token(BOB);
    const response = await fetch(`${server.url}/v1/approvals/${id}`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ decision, reason }),
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const cleanup = (query: string) => session.callTool("clean_up_notes", { code: CLEANUP_CODE, input: { query } });
  const pauseOf = (result: Awaited<ReturnType<typeof cleanup>>) => {
    const error = errorOf(result);
    expect(error.code).toBe("approval_required");
    const found = /approval (apr_[0-9a-f-]{36})/.exec(error.message);
    const args = /arguments sha256 ([0-9a-f]{64})/.exec(error.message);
    if (!found?.[1] || !args?.[1]) throw new Error(`no approval in ${error.message}`);
    return { id: found[1], argsSha256: args[1], message: error.message, hint: error.hint, runId: (result.structuredContent as { runId: string }).runId };
  };

  it("pauses at the privileged call, replays the calls before it on the retry, runs each approved call once; every side effect happens once", async () => {
    const effects = notes.effects.length;
    // 1. the run reads, writes the archive note, and pauses at the first delete
    const first = pauseOf(await cleanup("old"));
    expect(first.message).toMatch(/The call notes\.deleteNote with arguments sha256 [0-9a-f]{64} needs a human approval/);
    expect(first.hint).toContain(`${server.url}/approvals/${first.id}`);
    expect(notes.effects.slice(effects)).toEqual([{ tool: "create_note", args: { title: "archive old", body: "Stale draft; Obsolete memo" } }]);
    const firstCalls = (await finishedOf(first.runId))?.activity?.capabilities.calls ?? [];
    expect(firstCalls.map(({ method, decision, reason }) => `${method} ${decision} ${reason}`)).toEqual([
      "searchNotes allowed null",
      "createNote allowed null",
      "deleteNote denied approval_required",
    ]);
    expect(firstCalls[2]?.approvalId).toBe(first.id);
    // the approver sees the one call: operation and arguments
    const shown = await fetch(`${server.url}/v1/approvals/${first.id}`, { headers: { authorization: `Bearer ${await server.token(BOB)}` } });
    expect(await shown.json()).toMatchObject({
      state: "pending",
      call: { connector: "notes", operation: "deleteNote", argsSha256: first.argsSha256, argsJson: '{"id":"n4"}' },
    });

    // 2. approved; the retry replays search and create (no second archive note), deletes n4 once, pauses at n5
    expect((await decide(first.id, "approve", "stale draft, fine")).status).toBe(200);
    const second = pauseOf(await cleanup("old"));
    expect(second.id).not.toBe(first.id);
    expect(second.argsSha256).not.toBe(first.argsSha256);
    expect(notes.effects.slice(effects).map((effect) => `${effect.tool} ${JSON.stringify(effect.args)}`)).toEqual([
      'create_note {"title":"archive old","body":"Stale draft; Obsolete memo"}',
      'delete_note {"id":"n4"}',
    ]);
    const secondCalls = (await finishedOf(second.runId))?.activity?.capabilities.calls ?? [];
    expect(secondCalls.map(({ method, decision, reason, approvalId }) => `${method} ${decision} ${reason} ${approvalId ?? "-"}`)).toEqual([
      "searchNotes replayed null -",
      "createNote replayed null -",
      `deleteNote allowed null ${first.id}`,
      `deleteNote denied approval_required ${second.id}`,
    ]);

    // 3. the second delete approved: everything before it replays (the first delete too), n5 is deleted once, the run completes
    expect((await decide(second.id, "approve", "obsolete, fine")).status).toBe(200);
    const third = await cleanup("old");
    expect(third.structuredContent).toMatchObject({ termination: "completed", result: { archived: "n6", deleted: ["n4", "n5"] } });
    expect(notes.effects.slice(effects).map((effect) => effect.tool)).toEqual(["create_note", "delete_note", "delete_note"]);
    expect(notes.notes.has("n4") || notes.notes.has("n5")).toBe(false);
    // an approval is spent by the call it was for, once
    const spent = await fetch(`${server.url}/v1/approvals/${first.id}`, { headers: { authorization: `Bearer ${await server.token(BOB)}` } });
    expect(await spent.json()).toMatchObject({ state: "used", usedByRun: second.runId });
  }, 60_000);

  it("a changed argument needs a new approval; a rejection ends the run with its reason, whatever the code does", async () => {
    const effects = notes.effects.length;
    notes.notes.set("k1", { id: "k1", title: "Keep me", body: "keep" });
    notes.notes.set("k2", { id: "k2", title: "Keep me too", body: "keep" });
    // the code catches every error and carries on: the run still ends paused
    const catching = CLEANUP_CODE.replace(
      "await ctx.env.notes.deleteNote({ id: note.id });",
      "try { await ctx.env.notes.deleteNote({ id: note.id }); } catch {}",
    );
    const ask = (query: string) => session.callTool("clean_up_notes", { code: catching, input: { query } });
    const asked = pauseOf(await ask("keep"));
    expect((await decide(asked.id, "reject", "we keep these")).status).toBe(200);

    // another task (another input) with the same first delete is not covered by that decision: it asks anew
    const other = pauseOf(await ask("Keep me"));
    expect(other.id).not.toBe(asked.id);

    const rejected = await ask("keep");
    const error = errorOf(rejected);
    expect(error.code).toBe("approval_rejected");
    expect(error.message).toContain("rejected by bob: we keep these");
    expect(notes.notes.has("k1") && notes.notes.has("k2")).toBe(true);
    // two archive notes (one per task), no delete
    expect(notes.effects.slice(effects).map((effect) => effect.tool)).toEqual(["create_note", "create_note"]);
  }, 60_000);

  it("two retries at once: the calls before the pause are replayed to both, the approved call runs in one, the other pauses on a new request", async () => {
    const effects = notes.effects.length;
    notes.notes.set("d1", { id: "d1", title: "dup", body: "" });
    const first = pauseOf(await cleanup("dup"));
    expect((await decide(first.id, "approve", "fine")).status).toBe(200);
    const [a, b] = await Promise.all([cleanup("dup"), cleanup("dup")]);
    const outcomes = [a, b].map((result) => (result.structuredContent as { termination: string }).termination).sort();
    expect(outcomes).toEqual(["completed", "denied"]);
    const paused = pauseOf(a.isError ? a : b);
    expect(paused.id).not.toBe(first.id);
    expect(notes.effects.slice(effects).map((effect) => effect.tool)).toEqual(["create_note", "delete_note"]);
  }, 60_000);

  it("calls in flight beside a paused call: a retry before the approval loses none of them, and each effect happens once", async () => {
    const effects = notes.effects.length;
    notes.notes.set("p1", { id: "p1", title: "parallel", body: "" });
    // both calls start at once; the code waits for both before it gives up on the paused one
    const parallel = `export default async (input, ctx) => {
      const [created, deleted] = await Promise.allSettled([
        ctx.env.notes.createNote({ title: "side " + input.tag, body: "written beside the delete" }),
        ctx.env.notes.deleteNote({ id: "p1" }),
      ]);
      if (deleted.status === "rejected") throw deleted.reason;
      return created.value.id;
    };`;
    const ask = () => session.callTool("clean_up_notes", { code: parallel, input: { tag: "p" } });
    const first = pauseOf(await ask());
    // retried before anyone decided: still paused on the same request, nothing sent twice
    const again = pauseOf(await ask());
    expect(again.id).toBe(first.id);
    expect((await decide(first.id, "approve", "fine")).status).toBe(200);
    const done = await ask();
    expect(done.structuredContent).toMatchObject({ termination: "completed" });
    expect(notes.effects.slice(effects).map((effect) => effect.tool)).toEqual(["create_note", "delete_note"]);
  }, 60_000);

  it("a run that keeps a journal but calls no connector completes, and a late call of it would find it over", async () => {
    const result = await session.callTool("clean_up_notes", { code: "export default () => 7", input: {} });
    expect(result.structuredContent).toMatchObject({ termination: "completed", result: 7 });
  });

  it("a privileged call whose arguments JSON cannot carry exactly is refused before anything is asked or sent", async () => {
    const effects = notes.effects.length;
    const pending = await fetch(`${server.url}/v1/approvals?state=pending`, { headers: { authorization: `Bearer ${await server.token(BOB)}` } });
    const before = ((await pending.json()) as { approvals: unknown[] }).approvals.length;
    const result = await session.callTool("clean_up_notes", {
      code: `export default async (input, ctx) => {
        try { await ctx.env.notes.deleteNote({ id: "n1\\uD800" }); return "ran"; } catch (error) { return error.message; }
      };`,
      input: {},
    });
    expect((result.structuredContent as { result: string }).result).toMatch(/^\[invalid_request\] notes\.deleteNote: the arguments must be plain JSON/);
    expect(notes.effects.length).toBe(effects);
    const after = await fetch(`${server.url}/v1/approvals?state=pending`, { headers: { authorization: `Bearer ${await server.token(BOB)}` } });
    expect(((await after.json()) as { approvals: unknown[] }).approvals.length).toBe(before);
  });

  it("over MCP 2026-07-28, a client that can open a URL is asked with input_required for each call; its retries finish the run, each effect once", async () => {
    const effects = notes.effects.length;
    notes.notes.set("z1", { id: "z1", title: "zap one", body: "" });
    notes.notes.set("z2", { id: "z2", title: "zap two", body: "" });
    const asked: string[] = [];
    const client = new ClientV2(
      { name: "agent-exec-tests", version: "2.0.0" },
      { versionNegotiation: { mode: { pin: "2026-07-28" } }, capabilities: { elicitation: { url: {} } } },
    );
    // the person behind the client opens the page; an approver approves the one call it shows
    client.setRequestHandler("elicitation/create", async (request) => {
      const params = request.params as { mode?: string; url?: string };
      const id = /\/approvals\/(apr_[0-9a-f-]{36})$/.exec(params.url ?? "")?.[1] ?? "";
      asked.push(id);
      expect(params.mode).toBe("url");
      expect((await decide(id, "approve", "zap notes are disposable")).status).toBe(200);
      return { action: "accept" };
    });
    const token = await server.token({ tenant: "acme", actor: "alice", session: "s-mcp-connector" });
    await client.connect(new TransportV2(server.mcpUrl, { requestInit: { headers: { authorization: `Bearer ${token}` } } }));
    try {
      const result = await client.callTool({ name: "clean_up_notes", arguments: { code: CLEANUP_CODE, input: { query: "zap" } } });
      expect(result.structuredContent).toMatchObject({ termination: "completed", result: { deleted: ["z1", "z2"] } });
      expect(asked).toHaveLength(2);
      expect(notes.effects.slice(effects).map((effect) => `${effect.tool} ${JSON.stringify(effect.args)}`)).toEqual([
        'create_note {"title":"archive zap","body":"zap one; zap two"}',
        'delete_note {"id":"z1"}',
        'delete_note {"id":"z2"}',
      ]);
    } finally {
      await client.close();
    }
  }, 60_000);
});
