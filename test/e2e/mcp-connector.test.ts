// An upstream MCP server as a connector: a real MCP server on 127.0.0.1 (the MCP SDK's, in
// examples/local-notes.ts) and a real HTTP API (the local tracker), both described in
// connectors/, granted by one contract. Its tool list is pinned in the connector file (the
// real `connectors:pin` code); a run's code reads notes through the MCP server, computes and
// writes a comment through the HTTP API; each operation call is in the evidence. When the
// upstream changes its tools, calls are refused until the new list is pinned and in force as
// a new policy snapshot.
import { join } from "node:path";
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

type Call = { capability: string; method: string; decision: string; reason: string | null; status?: number | null; argsSha256?: string };
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
    ],
  });
  tracker = await startHttpUpstream(TRACKER_TOKEN);
  const dirs = dataDirs(
    { "notes-triage": CONTRACT },
    { tenants: { acme: { phases: [1, 2], teams: { ops: { members: ["*"], grants: [{ contract: "notes-triage", maxDataClass: "internal" }] } } } } },
    { notes: NOTES_CONNECTOR, tracker: TRACKER_CONNECTOR },
  );
  connectorsDir = dirs.CONNECTORS_DIR;
  notesOrigin = `http://127.0.0.1:${notes.port}`;
  const resolveMap = { "notes.example.test": notesOrigin, "tracker.example.test": `http://127.0.0.1:${tracker.port}` };
  // the connector file is pinned by the same code `npm run connectors:pin` runs
  const pinned = await pinConnector(join(connectorsDir, "notes.json"), { bearer: NOTES_TOKEN, resolveMap });
  expect(pinned.tools).toBe(3);
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
