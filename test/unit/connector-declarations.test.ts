import { describe, expect, it } from "vitest";
import { typeOf } from "../../src/contracts/connector-declarations.ts";
import { type Contract, connectorDeclaration, loadConnectors, loadContracts } from "../../src/contracts/index.ts";
import { connectorDocs, DECLARATIONS_BUDGET } from "../../src/mcp/tool-schemas.ts";

describe("TypeScript declarations of connector operations", () => {
  it.each([
    [{ type: "string" }, "string"],
    [{ type: "integer" }, "number"],
    [{ type: ["string", "null"] }, "string | null"],
    [{ enum: ["open", "closed"] }, '"open" | "closed"'],
    [{ const: 3 }, "3"],
    [{ type: "array", items: { type: "boolean" } }, "Array<boolean>"],
    [{ anyOf: [{ type: "string" }, { type: "number" }] }, "string | number"],
    [{ type: "object", properties: { id: { type: "string" }, "label-name": { type: "string" } }, required: ["id"] }, '{ id: string; "label-name"?: string }'],
    [{ type: "object" }, "Record<string, unknown>"],
    [{ type: "object", properties: {}, additionalProperties: false }, "{}"],
    [{ format: "date" }, "unknown"],
  ])("%j is %s", (schema, type) => {
    expect(typeOf(schema)).toBe(type);
  });
});

/** A connector of `n` operations, each with a few typed arguments. */
function connectorOf(n: number) {
  const operations = Object.fromEntries(
    Array.from({ length: n }, (_, i) => [
      `operation${i}`,
      {
        description: `Does thing number ${i} to an issue.`,
        effect: i % 2 === 0 ? "read" : "mutate",
        method: i % 2 === 0 ? "GET" : "POST",
        path: `things/{id}/op${i}`,
        arguments: {
          type: "object",
          properties: { id: { type: "string" }, limit: { type: "integer" }, labels: { type: "array", items: { type: "string" } } },
          required: ["id"],
        },
      },
    ]),
  );
  const loaded = loadConnectors([
    { file: "c.json", json: { name: "things", description: "Things.", kind: "http", baseUrl: "https://things.example.com/", operations } },
  ]);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return loaded.connectors;
}

function contractGranting(patterns: string[]): Contract {
  const loaded = loadContracts([
    {
      file: "c.json",
      json: {
        id: "things",
        version: "1.0.0",
        tool: "do_things",
        title: "Things",
        description: "Things.",
        class: "controlled-mutation",
        phase: 2,
        inputSchema: { type: "object" },
        actions: ["things.read", "things.mutate"],
        connectors: [{ connector: "things", operations: patterns }],
      },
    },
  ]);
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return loaded.contracts[0] as Contract;
}

describe("what a tool's description says of its connectors", () => {
  it("carries the declarations of a small grant, generated from the schemas", () => {
    const docs = connectorDocs(contractGranting(["operation1", "operation2"]), connectorOf(3));
    expect(docs).toContain("declare const things: {");
    expect(docs).toContain(
      "/** Does thing number 1 to an issue. (mutate) */\n  operation1(args: { id: string; limit?: number; labels?: Array<string> }): Promise<unknown>;",
    );
    expect(docs).not.toContain("operation0");
  });

  it("names a large catalogue's operations and points at describe() instead of listing 50 declarations", () => {
    const connectors = connectorOf(50);
    const docs = connectorDocs(contractGranting(["*"]), connectors);
    const full = connectorDeclaration(connectors[0] as (typeof connectors)[number], Object.keys(connectors[0]?.operations ?? {}));
    expect(full.length).toBeGreaterThan(DECLARATIONS_BUDGET);
    expect(docs.length).toBeLessThan(full.length / 2);
    expect(docs).toContain("describe(");
    expect(docs).toContain("operation49");
  });

  it("says nothing for a contract without connector grants", () => {
    expect(connectorDocs(contractGranting(["*"]), [])).toBe("");
  });
});
