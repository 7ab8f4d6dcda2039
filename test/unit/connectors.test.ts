import { describe, expect, it } from "vitest";
import committedSchema from "../../connectors/connector.schema.json";
import { type Connector, type Contract, connectorGrantProblems, connectorJsonSchema, loadConnectors, loadContracts } from "../../src/contracts/index.ts";

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
    expect(issues?.operations.addComment?.query).toEqual([]);
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
    ["a privileged operation (its mid-run approval is not built)", { connectors: [{ connector: "issues", operations: ["*"] }] }, /deleteIssue is privileged/],
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
