// An OpenAPI document as the source of an http connector: what `npm run connectors:openapi`
// writes, checked as `npm start` checks connector files.
import { describe, expect, it } from "vitest";
import { loadConnectors } from "../../src/contracts/index.ts";
import { connectorFromOpenApi, operationName } from "../../src/local/openapi-source.ts";
import document from "../fixtures/openapi/issues.openapi.json";

const DOCUMENT = document as Record<string, unknown>;

describe("a connector from an OpenAPI document", () => {
  const { connector, skipped } = connectorFromOpenApi(DOCUMENT, { name: "issues" });
  const operations = connector.operations as Record<string, Record<string, unknown>>;

  it("makes one operation per operationId, with its method, path, parameters, JSON body and result, $refs resolved", () => {
    expect(connector).toMatchObject({ name: "issues", kind: "http", baseUrl: "https://issues.example.com/api/", description: "Issue tracker API" });
    expect(Object.keys(operations)).toEqual(["listIssues", "closeIssue", "deleteIssue", "addComment"]);
    expect(operations.listIssues).toEqual({
      description: "Issues in a state, newest first.",
      effect: "read",
      method: "GET",
      path: "issues",
      query: ["state", "limit"],
      arguments: {
        type: "object",
        properties: { state: { type: "string", enum: ["open", "closed"] }, limit: { type: "integer", maximum: 100 } },
        required: ["limit"],
        additionalProperties: false,
      },
      result: { type: "array", items: { type: "object", properties: { id: { type: "string" }, title: { type: "string" } } } },
    });
    expect(operations.addComment).toMatchObject({
      method: "POST",
      path: "issues/{id}/comments",
      arguments: { properties: { id: { type: "string" }, body: { type: "string", maxLength: 2000 } }, required: ["id", "body"] },
      result: { type: "object", properties: { id: { type: "string" }, body: { type: "string" } } },
    });
  });

  it("judges effects conservatively, and takes the document's x-agent-exec-effect where it says", () => {
    expect(Object.fromEntries(Object.entries(operations).map(([name, operation]) => [name, operation.effect]))).toEqual({
      listIssues: "read",
      deleteIssue: "privileged",
      closeIssue: "privileged",
      addComment: "mutate",
    });
  });

  it("says what it left out and why", () => {
    expect(skipped).toEqual(["GET /health: no operationId", "upload: a required header parameter (x-upload-id)"]);
  });

  it("writes a file npm start accepts", () => {
    expect(loadConnectors([{ file: "issues.json", json: connector }]).ok).toBe(true);
  });

  it("refuses what is not an OpenAPI 3 document, or has no base URL", () => {
    expect(() => connectorFromOpenApi({ swagger: "2.0" }, { name: "x" })).toThrow(/not an OpenAPI 3 document/);
    expect(() => connectorFromOpenApi({ ...DOCUMENT, servers: [{ url: "/api" }] }, { name: "x" })).toThrow(/--base-url/);
  });

  it("names operations in lower camel case", () => {
    expect(["list_issues", "add-comment", "DeleteIssue", "2fa.reset"].map(operationName)).toEqual(["listIssues", "addComment", "deleteIssue", "op2faReset"]);
  });
});
