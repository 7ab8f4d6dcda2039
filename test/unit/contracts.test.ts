import { describe, expect, it } from "vitest";
import committedSchema from "../../contracts/contract.schema.json";
import committedPolicySchema from "../../policy/policy.schema.json";
import { bundledCatalog } from "../../src/catalog/index.ts";
import { contractJsonSchema, loadContracts } from "../../src/contracts/index.ts";
import { policyJsonSchema } from "../../src/policy/index.ts";

const valid = {
  id: "example-contract",
  version: "1.0.0",
  tool: "run_example",
  title: "Example",
  description: "An example contract.",
  class: "read-only",
  phase: 1,
  inputSchema: { type: "object" },
};

describe("contracts", () => {
  it("bundles the three workload classes of the article", () => {
    const { contracts } = bundledCatalog();
    expect(contracts.map((c) => c.class).sort()).toEqual(["controlled-mutation", "privileged", "read-only"]);
    expect(contracts.find((c) => c.class === "privileged")?.approval.required).toBe(true);
  });

  it("fills in limits and approval defaults", () => {
    const result = loadContracts([{ file: "contracts/example.json", json: valid }]);
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.contracts[0]?.limits).toMatchObject({ wallMs: 5000, outputBytes: 65536, cpuMs: 50 });
    expect(result.contracts[0]?.approval).toEqual({ required: false, ttlMinutes: 15 });
  });

  it.each<[string, Record<string, unknown>, string, RegExp]>([
    ["a missing id", { id: undefined }, "id", /expected string/],
    ["an id with capitals", { id: "Bad" }, "id", /lowercase/],
    ["an unknown class", { class: "admin" }, "class", /read-only/],
    ["an unknown field", { owner: "me" }, "(root)", /owner/],
    ["a privileged contract without approval", { class: "privileged", approval: { required: false } }, "approval.required", /must require approval/],
    ["an input schema that is not an object schema", { inputSchema: { type: "string" } }, "inputSchema", /"type": "object"/],
    ["a deadline above the maximum", { limits: { wallMs: 10_000_000 } }, "limits.wallMs", /300000/],
    ["a negative output cap", { limits: { outputBytes: -1 } }, "limits.outputBytes", /16/],
    ["an unknown limit", { limits: { gpu: 1 } }, "limits", /gpu/],
    ["a tool name with spaces", { tool: "run example" }, "tool", /MCP tool name/],
    ["a non-semver version", { version: "v1" }, "version", /semantic version/],
    ["a default data class above the maximum", { dataClass: { max: "internal", default: "restricted" } }, "dataClass.default", /above the maximum/],
    ["an unknown data class", { dataClass: { max: "secret", default: "internal" } }, "dataClass.max", /restricted/],
    ["a malformed action", { actions: ["Tracker Comment"] }, "actions.0", /dotted lowercase/],
    ["a task window above 15 minutes", { task: { ttlSeconds: 3600 } }, "task.ttlSeconds", /900/],
    [
      "a rule that would inject a secret over plain http",
      { egress: [{ host: "api.example.com", protocol: "http", inject: { header: "authorization", secret: "EGRESS_API_TOKEN" } }] },
      "egress.0.inject",
      /must be https/,
    ],
    [
      "egress rules with no outbound request allowed",
      { limits: { subRequests: 0 }, egress: [{ host: "api.example.com", protocol: "https" }] },
      "limits.subRequests",
      /at least 1/,
    ],
    ["a rule naming a cloud metadata service", { egress: [{ host: "Metadata.Google.Internal.", protocol: "http" }] }, "egress.0.host", /metadata/],
  ])("names the file and field of %s", (_case, change, field, message) => {
    const json = { ...valid, ...change };
    for (const [key, value] of Object.entries(change)) if (value === undefined) delete (json as Record<string, unknown>)[key];
    const result = loadContracts([{ file: "contracts/broken.json", json }]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const problem = result.problems.find((p) => p.field === field);
    expect(problem, JSON.stringify(result.problems)).toBeDefined();
    expect(problem?.file).toBe("contracts/broken.json");
    expect(problem?.message).toMatch(message);
  });

  it("refuses two contracts with the same id or tool name", () => {
    const result = loadContracts([
      { file: "contracts/a.json", json: valid },
      { file: "contracts/b.json", json: valid },
    ]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems).toEqual([
      { file: "contracts/b.json", field: "id", message: expect.stringContaining("also in contracts/a.json") },
      { file: "contracts/b.json", field: "tool", message: expect.stringContaining("also in contracts/a.json") },
    ]);
  });

  it("refuses an empty contract folder", () => {
    expect(loadContracts([])).toMatchObject({ ok: false, problems: [{ message: "no contract files found" }] });
  });

  it("keeps contracts/contract.schema.json and policy/policy.schema.json in step with the zod schemas (npm run schemas)", () => {
    expect(committedSchema).toEqual(contractJsonSchema());
    expect(committedPolicySchema).toEqual(policyJsonSchema());
  });
});

describe("backpressure", () => {
  const heavy = { ...valid, id: "heavy", tool: "run_heavy", capabilities: ["docs"], actions: ["read"], limits: { wallMs: 5000 } };
  const lite = { ...valid, id: "lite", tool: "run_lite", limits: { wallMs: 1000 } };
  const load = (...contracts: object[]) => loadContracts(contracts.map((json, i) => ({ file: `contracts/${i}.json`, json })));
  const problems = (result: ReturnType<typeof load>) => (result.ok ? [] : result.problems.map((p) => `${p.field}: ${p.message}`));

  it("defaults to reject, and accepts a downgrade to a contract that is no more than the original", () => {
    const result = load({ ...heavy, backpressure: { mode: "downgrade", downgradeTo: "lite" } }, lite);
    expect(problems(result)).toEqual([]);
    expect(result.ok && result.contracts[1]?.backpressure).toEqual({ mode: "reject", maxWaitMs: 2000 });
  });

  it.each([
    ["a missing target", { mode: "downgrade", downgradeTo: "nowhere" }, [lite], 'no contract "nowhere"'],
    ["a target with higher limits", { mode: "downgrade", downgradeTo: "lite" }, [{ ...lite, limits: { wallMs: 9000 } }], "limits.wallMs"],
    ["a target with more capabilities", { mode: "downgrade", downgradeTo: "lite" }, [{ ...lite, capabilities: ["docs", "tracker"] }], "capabilities"],
    ["a target of another class", { mode: "downgrade", downgradeTo: "lite" }, [{ ...lite, class: "controlled-mutation", phase: 2 }], "same class"],
    ["downgradeTo without the mode", { mode: "reject", downgradeTo: "lite" }, [lite], "exactly when the mode is downgrade"],
    ["a downgrade without a target", { mode: "downgrade" }, [lite], "exactly when the mode is downgrade"],
  ])("refuses %s, naming the field", (_case, backpressure, others, message) => {
    const found = problems(load({ ...heavy, backpressure }, ...others));
    expect(found.some((p) => p.startsWith("backpressure.downgradeTo") && p.includes(message))).toBe(true);
  });
});

describe("redaction rules", () => {
  it.each([
    ["an invalid regular expression", { rules: [{ name: "bad", pattern: "([" }] }, "not a valid regular expression"],
    ["a rule with both a pattern and a path", { rules: [{ name: "both", pattern: "x", path: "$.x" }] }, "exactly one of pattern or path"],
    ["a malformed JSON path", { rules: [{ name: "p", path: "password" }] }, "JSON path"],
  ])("refuses %s, naming the field", (_case, redaction, message) => {
    const result = loadContracts([{ file: "contracts/x.json", json: { ...valid, redaction } }]);
    expect(result.ok).toBe(false);
    expect(result.ok ? [] : result.problems.map((p) => `${p.field}: ${p.message}`)).toEqual([
      expect.stringMatching(new RegExp(`^redaction\\.rules\\.0.*${message}`)),
    ]);
  });
});
