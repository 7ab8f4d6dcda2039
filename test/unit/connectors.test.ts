import { describe, expect, it } from "vitest";
import committedSchema from "../../connectors/connector.schema.json";
import {
  type Connector,
  type Contract,
  connectorGrantProblems,
  connectorJsonSchema,
  loadConnectors,
  loadContracts,
  toolListSha256,
} from "../../src/contracts/index.ts";

const ISSUES = {
  name: "issues",
  description: "The issue tracker's API.",
  kind: "http",
  baseUrl: "https://issues.example.com/api/",
  operations: {
    listIssues: {
      description: "Open issues, newest first.",
      effect: "read",
      method: "GET",
      path: "issues",
      query: ["state"],
      arguments: { type: "object", properties: { state: { type: "string", enum: ["open", "closed"] } }, additionalProperties: false },
    },
    addComment: {
      description: "Comments on an issue.",
      effect: "mutate",
      method: "POST",
      path: "issues/{id}/comments",
      arguments: {
        type: "object",
        properties: { id: { type: "string" }, body: { type: "string", maxLength: 10000 } },
        required: ["id", "body"],
        additionalProperties: false,
      },
    },
    deleteIssue: {
      description: "Deletes an issue.",
      effect: "privileged",
      method: "DELETE",
      path: "issues/{id}",
      arguments: { type: "object", properties: { id: { type: "string" } }, required: ["id"] },
    },
  },
};

const CONTRACT = {
  id: "issue-triage",
  version: "1.0.0",
  tool: "triage_issues",
  title: "Issue triage",
  description: "Reads and comments on issues.",
  class: "controlled-mutation",
  phase: 2,
  inputSchema: { type: "object" },
  limits: { subRequests: 10 },
  actions: ["issues.read", "issues.mutate"],
  connectors: [{ connector: "issues", operations: ["list*", "addComment"] }],
  egress: [
    {
      host: "issues.example.com",
      protocol: "https",
      methods: ["GET", "POST"],
      capability: "connector:issues",
      inject: { header: "authorization", secret: "EGRESS_ISSUES_TOKEN", format: "Bearer {secret}" },
    },
  ],
};

function connectorsOf(...files: object[]): Connector[] {
  const result = loadConnectors(files.map((json, index) => ({ file: `connectors/${index}.json`, json })));
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.connectors;
}

function contractOf(json: object): Contract {
  const result = loadContracts([{ file: "contracts/c.json", json }]);
  if (!result.ok) throw new Error(JSON.stringify(result.problems));
  return result.contracts[0] as Contract;
}

const grantProblems = (contract: object, ...connectors: object[]) =>
  connectorGrantProblems([contractOf(contract)], connectorsOf(...connectors), () => "contracts/c.json").map((p) => `${p.field}: ${p.message}`);

describe("connectors as data", () => {
  it("loads a connector file with its operations, defaults filled in", () => {
    const [issues] = connectorsOf(ISSUES);
    expect(Object.keys(issues?.operations ?? {})).toEqual(["listIssues", "addComment", "deleteIssue"]);
    expect(issues?.kind === "http" && issues.operations.addComment?.query).toEqual([]);
  });

  it.each([
    ["a path parameter that is not a required argument", { path: "issues/{number}/comments" }, "operations.addComment.path", /\{number\}/],
    ["a query parameter that is not an argument", { query: ["page"] }, "operations.addComment.query", /"page"/],
    ["an absolute path", { path: "/issues" }, "operations.addComment.path", /relative/],
    ["a path that climbs out of the base URL", { path: "issues/../admin" }, "operations.addComment.path", /\.\./],
    ["an unknown effect", { effect: "destroy" }, "operations.addComment.effect", /read|mutate|privileged/],
  ])("names the file and field of %s", (_case, change, field, message) => {
    const broken = { ...ISSUES, operations: { ...ISSUES.operations, addComment: { ...ISSUES.operations.addComment, ...change } } };
    const result = loadConnectors([{ file: "connectors/issues.json", json: broken }]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toContainEqual({ file: "connectors/issues.json", field, message: expect.stringMatching(message) });
  });

  it("reserves call and describe, the methods every connector has in ctx.env", () => {
    const result = loadConnectors([{ file: "connectors/i.json", json: { ...ISSUES, operations: { describe: ISSUES.operations.listIssues } } }]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems[0]?.message).toMatch(/call and describe/);
  });

  it("refuses a base URL without a trailing slash, a name code cannot use, and two names that differ only in case", () => {
    const result = loadConnectors([
      { file: "connectors/a.json", json: { ...ISSUES, baseUrl: "https://issues.example.com/api" } },
      { file: "connectors/b.json", json: { ...ISSUES, name: "issue-tracker" } },
      { file: "connectors/c.json", json: ISSUES },
      { file: "connectors/d.json", json: { ...ISSUES, name: "Issues" } },
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.map((p) => `${p.file} ${p.field}`)).toEqual(["connectors/a.json baseUrl", "connectors/b.json name", "connectors/d.json name"]);
  });

  describe("an MCP server's connector", () => {
    const TOOLS = [
      { name: "search_notes", description: "Finds notes.", inputSchema: { type: "object", properties: { query: { type: "string" } }, required: ["query"] } },
      {
        name: "summarize",
        description: "Summarizes notes.",
        inputSchema: { type: "object", properties: { title: { type: "string" } } },
        outputSchema: { type: "object" },
      },
    ];
    const NOTES = {
      name: "notes",
      description: "The notes server.",
      kind: "mcp",
      url: "https://notes.example.com/mcp",
      operations: { searchNotes: { tool: "search_notes", effect: "read" }, summarize: { effect: "mutate", description: "Ours." } },
      pinned: { sha256: toolListSha256(TOOLS), pinnedAt: "2026-12-02T00:00:00.000Z", tools: TOOLS },
    };
    const problemsOf = (json: object) => {
      const result = loadConnectors([{ file: "connectors/notes.json", json }]);
      return result.ok ? [] : result.problems.map((p) => `${p.field}: ${p.message}`);
    };

    it("takes each operation's description and schemas from its pinned tool", () => {
      const [notes] = connectorsOf(NOTES);
      expect(notes?.kind === "mcp" && notes.operations).toEqual({
        searchNotes: { tool: "search_notes", description: "Finds notes.", effect: "read", arguments: TOOLS[0]?.inputSchema },
        summarize: { tool: "summarize", description: "Ours.", effect: "mutate", arguments: TOOLS[1]?.inputSchema, result: { type: "object" } },
      });
    });

    it("hashes a tool list whatever the order of its tools and keys, and only the fields a pin keeps", () => {
      const reordered = [{ ...TOOLS[1], _meta: { x: 1 }, execution: { taskSupport: "forbidden" } }, TOOLS[0]] as Array<Record<string, unknown>>;
      expect(toolListSha256(reordered)).toBe(NOTES.pinned.sha256);
      expect(toolListSha256([{ ...TOOLS[0], description: "Finds notes. Then export them." }, TOOLS[1]] as Array<Record<string, unknown>>)).not.toBe(
        NOTES.pinned.sha256,
      );
    });

    it.each([
      ["a tool list edited by hand", { pinned: { ...NOTES.pinned, tools: [TOOLS[0]] } }, /^pinned\.sha256: is not the SHA-256 of pinned\.tools/],
      [
        "an operation whose tool is not pinned",
        { operations: { ...NOTES.operations, drop: { effect: "privileged" } } },
        /^operations\.drop\.tool: the upstream has no tool "drop"/,
      ],
      ["no pin at all", { pinned: undefined }, /^pinned: missing: npm run connectors:pin/],
      ["an http field", { baseUrl: "https://notes.example.com/" }, /baseUrl/],
    ])("refuses %s, naming the field", (_case, change, message) => {
      expect(problemsOf({ ...NOTES, ...change })).toContainEqual(expect.stringMatching(message));
    });

    it("needs an egress rule scoped to it that lets POST reach its endpoint", () => {
      const contract = {
        ...CONTRACT,
        actions: ["notes.read"],
        connectors: [{ connector: "notes", operations: ["searchNotes"] }],
        egress: [{ host: "notes.example.com", protocol: "https", methods: ["GET"], capability: "connector:notes" }],
      };
      expect(grantProblems(contract, NOTES)).toEqual([
        expect.stringMatching(/^egress: no egress rule .* lets notes\.searchNotes \(POST https:\/\/notes\.example\.com\/mcp/),
      ]);
      expect(grantProblems({ ...contract, egress: [{ ...contract.egress[0], methods: ["POST"], paths: ["/mcp"] }] }, NOTES)).toEqual([]);
    });
  });

  it("keeps connectors/connector.schema.json in step with the zod schema (npm run schemas)", () => {
    expect(committedSchema).toEqual(connectorJsonSchema());
  });
});

describe("what contracts grant of connectors", () => {
  it("accepts a grant of known operations whose effects the contract declares as actions, with an egress rule to the API", () => {
    expect(grantProblems(CONTRACT, ISSUES)).toEqual([]);
  });

  it.each([
    ["an unknown connector", { connectors: [{ connector: "wiki", operations: ["*"] }] }, /connectors\.0\.connector: no connector "wiki"/],
    [
      "a pattern that selects nothing",
      { connectors: [{ connector: "issues", operations: ["close*"] }] },
      /connectors\.0\.operations: "close\*" selects no operation/,
    ],
    ["an effect's action the contract does not declare", { actions: ["issues.read"] }, /actions: .*"issues\.mutate"/],
    [
      "a privileged operation whose action the contract does not declare",
      { connectors: [{ connector: "issues", operations: ["*"] }] },
      /actions: grants privileged operations of issues, so it must declare the action "issues\.privileged"/,
    ],
    [
      "an approve pattern that selects no granted operation",
      { connectors: [{ connector: "issues", operations: ["list*", "addComment"], approve: ["deleteIssue"] }] },
      /connectors\.0\.approve: "deleteIssue" selects no operation this grant grants/,
    ],
    [
      "an egress rule the code's own fetch() would match too",
      { egress: [{ host: "issues.example.com", protocol: "https" }] },
      /"capability": "connector:issues"/,
    ],
    [
      "no egress rule to the API's host",
      { egress: [], limits: { subRequests: 0 } },
      /egress: no egress rule with "capability": "connector:issues" lets issues\.listIssues \(GET https:\/\/issues\.example\.com\/api\/issues…\) out/,
    ],
  ])("refuses %s, naming the field", (_case, change, message) => {
    expect(grantProblems({ ...CONTRACT, ...change }, ISSUES).join("\n")).toMatch(message);
  });
});
