import { env } from "cloudflare:workers";
import { describe, expect, it } from "vitest";
import { DEFAULT_BUDGET } from "../../src/budget/index.ts";
import { bundledCatalog } from "../../src/catalog/index.ts";
import type { Contract } from "../../src/contracts/index.ts";
import { canonicalJson, sha256Hex } from "../../src/evidence/index.ts";
import {
  archiveFor,
  DENY_REASONS,
  type DecisionRequest,
  decide,
  hashSnapshot,
  loadPolicy,
  type PolicySnapshot,
  policyInForce,
  refusalError,
  snapshotOf,
  type TenantPolicy,
} from "../../src/policy/index.ts";

const { contracts } = bundledCatalog();
const byId = (id: string) => contracts.find((c) => c.id === id) as Contract;

// A tenant written for these tests, independent of policy/tenants.json.
const TENANT: TenantPolicy = {
  budget: DEFAULT_BUDGET,
  rollout: {},
  roles: ["operator", "analyst"],
  phases: [1, 3],
  teams: {
    data: {
      members: ["ana", "bo"],
      grants: [{ contract: "read-only-analysis", maxDataClass: "confidential", actions: ["read"], roles: [] }],
    },
    ops: {
      members: ["*"],
      grants: [{ contract: "privileged-change", maxDataClass: "restricted", actions: ["*"], roles: ["operator"] }],
    },
    writers: {
      members: ["wes"],
      grants: [{ contract: "controlled-mutation", maxDataClass: "internal", actions: ["tracker.comment"], roles: [] }],
    },
    strict: {
      members: ["sam"],
      grants: [{ contract: "read-only-analysis", maxDataClass: "public", actions: ["read"], roles: ["analyst"] }],
    },
  },
};
const snapshot = (policy: TenantPolicy | undefined = TENANT, tenant = "t1"): PolicySnapshot => snapshotOf(tenant, policy, contracts);
const allPhases = snapshot({ ...TENANT, phases: [1, 2, 3] });
const ask = (over: Partial<DecisionRequest>): DecisionRequest => ({
  tenant: "t1",
  actor: "ana",
  roles: [],
  contractId: "read-only-analysis",
  dataClass: null,
  ...over,
});

describe("decide", () => {
  const DECISION_CASES: Array<[string, Partial<DecisionRequest>, PolicySnapshot | undefined, string, string[]]> = [
    ["a granted contract within the data class", {}, undefined, "allow", []],
    ["a declared class at the grant's bound", { dataClass: "confidential" }, undefined, "allow", []],
    [
      "a privileged contract for an operator",
      { actor: "zed", roles: ["operator"], contractId: "privileged-change" },
      undefined,
      "needs_approval",
      ["approval_required"],
    ],
    ["an unknown tenant", { tenant: "nobody" }, snapshotOf("nobody", undefined, contracts), "deny", ["tenant_unknown"]],
    ["a snapshot of another tenant", { tenant: "t2" }, undefined, "deny", ["tenant_unknown"]],
    ["an unknown contract", { contractId: "no-such-contract" }, undefined, "deny", ["contract_unknown"]],
    [
      "an actor in no team",
      { actor: "mallory" },
      snapshot({ ...TENANT, teams: { data: TENANT.teams.data as TenantPolicy["teams"][string] } }),
      "deny",
      ["actor_not_in_team"],
    ],
    ["a contract no team of the actor grants", { actor: "ana", contractId: "controlled-mutation" }, allPhases, "deny", ["contract_not_granted"]],
    ["a grant whose role the token lacks", { actor: "zed", contractId: "privileged-change" }, undefined, "deny", ["role_missing"]],
    ["a declared class above the grant", { dataClass: "restricted" }, undefined, "deny", ["data_class_not_allowed", "data_class_above_contract"]],
    [
      "an undeclared class above a public-only grant (default is internal, never public)",
      { actor: "sam", roles: ["analyst"] },
      undefined,
      "deny",
      ["data_class_not_allowed"],
    ],
    [
      "a declared class above the contract's maximum",
      { actor: "wes", contractId: "controlled-mutation", dataClass: "confidential" },
      allPhases,
      "deny",
      ["data_class_not_allowed", "data_class_above_contract"],
    ],
    ["a phase the tenant has not enabled", { actor: "wes", contractId: "controlled-mutation" }, undefined, "deny", ["phase_not_enabled"]],
    ["every failing grant's reasons together", { actor: "sam", dataClass: "confidential" }, undefined, "deny", ["role_missing", "data_class_not_allowed"]],
  ];

  it.each(DECISION_CASES)("decides %s", (_case, request, snap, outcome, reasons) => {
    const decision = decide(ask(request), snap ?? snapshot());
    expect(decision.outcome).toBe(outcome);
    expect(decision.reasons).toEqual(reasons);
  });

  it("denies action_not_granted when the grant leaves none of the contract's actions in scope", () => {
    const onlyOther = loadPolicy(
      [
        {
          file: "t.json",
          json: {
            tenants: {
              t1: {
                phases: [2],
                teams: { t: { members: ["x"], grants: [{ contract: "controlled-mutation", maxDataClass: "internal", actions: ["tracker.label"] }] } },
              },
            },
          },
        },
      ],
      contracts,
    );
    if (!onlyOther.ok) throw new Error(JSON.stringify(onlyOther.problems));
    const contract = { ...byId("controlled-mutation"), actions: ["tracker.comment"] };
    const snap = snapshotOf(
      "t1",
      onlyOther.policy.tenants.t1,
      contracts.map((c) => (c.id === contract.id ? contract : c)),
    );
    expect(decide(ask({ actor: "x", contractId: "controlled-mutation" }), snap)).toMatchObject({ outcome: "deny", reasons: ["action_not_granted"] });
  });

  it("says which team allowed it, under which class and with which action scope", () => {
    expect(decide(ask({ actor: "wes", contractId: "controlled-mutation" }), snapshot({ ...TENANT, phases: [1, 2] }))).toEqual({
      outcome: "allow",
      reasons: [],
      dataClass: "internal",
      team: "writers",
      scope: ["tracker.comment"],
    });
  });

  it("names the roles a grant needs when the token lacks them", () => {
    const decision = decide(ask({ actor: "zed", contractId: "privileged-change" }), snapshot());
    expect(decision).toMatchObject({ outcome: "deny", reasons: ["role_missing"], rolesMissing: ["operator"] });
    const error = refusalError(decision, "f".repeat(64), "privileged-change");
    expect(error.message).toContain("(the grant needs role operator)");
    expect(error.hint).toMatch(/requires the role operator, which your token does not carry/);
  });

  it("covers every reason code in the table above", () => {
    // action_not_granted needs a contract with an action no grant scopes: its own test above
    const covered = new Set([...DECISION_CASES.flatMap(([, , , , reasons]) => reasons), "action_not_granted"]);
    for (const reason of DENY_REASONS) expect(covered, `no case of the table decides ${reason}`).toContain(reason);
  });

  it("is pure: the same request and snapshot always give the same decision", () => {
    const snap = snapshot();
    const first = decide(ask({ dataClass: "restricted" }), snap);
    for (let i = 0; i < 5; i++) expect(decide(ask({ dataClass: "restricted" }), structuredClone(snap))).toEqual(first);
  });
});

describe("policy files", () => {
  const tenantWith = (grant: object, extra: object = {}) => ({
    tenants: { t1: { roles: ["operator"], teams: { a: { members: ["*"], grants: [grant] } }, ...extra } },
  });

  it.each<[string, object, string, RegExp]>([
    [
      "a grant for a contract that does not exist",
      tenantWith({ contract: "nope", maxDataClass: "public" }),
      "tenants.t1.teams.a.grants.0.contract",
      /no contract has the id "nope"/,
    ],
    [
      "a role the tenant does not declare",
      tenantWith({ contract: "read-only-analysis", maxDataClass: "public", roles: ["wizard"] }),
      "tenants.t1.teams.a.grants.0.roles",
      /not declared/,
    ],
    [
      "an action the contract does not have",
      tenantWith({ contract: "read-only-analysis", maxDataClass: "public", actions: ["tracker.comment"] }),
      "tenants.t1.teams.a.grants.0.actions",
      /has no action/,
    ],
    ["an unknown data class", tenantWith({ contract: "read-only-analysis", maxDataClass: "secret" }), "tenants.t1.teams.a.grants.0.maxDataClass", /restricted/],
    ["an unknown phase", tenantWith({ contract: "read-only-analysis", maxDataClass: "public" }, { phases: [4] }), "tenants.t1.phases.0", /Invalid/],
    ["a team without members", { tenants: { t1: { teams: { a: { members: [] } } } } }, "tenants.t1.teams.a.members", /too small|>=1/i],
    ["an unknown field", { tenants: {}, owner: "me" }, "(root)", /owner/],
  ])("names the file and field of %s", (_case, json, field, message) => {
    const result = loadPolicy([{ file: "policy/broken.json", json }], contracts);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const problem = result.problems.find((p) => p.field === field);
    expect(problem, JSON.stringify(result.problems)).toBeDefined();
    expect(problem).toMatchObject({ file: "policy/broken.json", message: expect.stringMatching(message) });
  });

  it("refuses a tenant declared in two files", () => {
    const file = { tenants: { t1: { teams: {} } } };
    const result = loadPolicy(
      [
        { file: "policy/a.json", json: file },
        { file: "policy/b.json", json: file },
      ],
      contracts,
    );
    expect(result).toMatchObject({ ok: false, problems: [{ file: "policy/b.json", field: "tenants.t1", message: expect.stringContaining("policy/a.json") }] });
  });

  it("bundles the shipped policy: acme in all phases, globex read-only on public data", () => {
    const { policy } = bundledCatalog();
    expect(policy.tenants.acme?.phases).toEqual([1, 2, 3]);
    expect(policy.tenants.globex?.teams.analysts?.grants).toEqual([{ contract: "read-only-analysis", maxDataClass: "public", actions: ["read"], roles: [] }]);
  });
});

describe("policy snapshots", () => {
  it("are named by the SHA-256 of their canonical JSON, whatever the key order", async () => {
    const hashed = await hashSnapshot(snapshot());
    expect(hashed.hash).toBe(await sha256Hex(canonicalJson(snapshot())));
    const reversed = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reversed)
        : value && typeof value === "object"
          ? Object.fromEntries(
              Object.entries(value)
                .reverse()
                .map(([k, v]) => [k, reversed(v)]),
            )
          : value;
    const reordered = reversed(snapshot()) as PolicySnapshot;
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(snapshot()));
    expect((await hashSnapshot(reordered)).hash).toBe(hashed.hash);
  });

  it("change hash when the policy or any contract changes, and only then", async () => {
    const base = (await hashSnapshot(snapshot())).hash;
    expect((await hashSnapshot(snapshot())).hash).toBe(base);
    expect((await hashSnapshot(snapshot({ ...TENANT, phases: [1] }))).hash).not.toBe(base);
    const changedContract = snapshotOf(
      "t1",
      TENANT,
      contracts.map((c) => (c.id === "read-only-analysis" ? { ...c, limits: { ...c.limits, wallMs: 4999 } } : c)),
    );
    expect((await hashSnapshot(changedContract)).hash).not.toBe(base);
  });

  it("are archived before use and can be read back byte for byte", async () => {
    const inForce = policyInForce({ tenants: { t1: TENANT } }, contracts, env.POLICY_ARCHIVE);
    const hashed = await inForce.snapshotFor("t1");
    const archived = await archiveFor(env.POLICY_ARCHIVE, hashed.hash).get(hashed.hash);
    expect(archived).toMatchObject({ tenant: "t1", canonical: hashed.canonical });
    expect(await sha256Hex(archived?.canonical ?? "")).toBe(hashed.hash);
  });

  describe("hardening", () => {
    it("refuses to archive text that does not hash to its name", async () => {
      const hashed = await hashSnapshot(snapshot(TENANT, "t-forged"));
      const forged = hashed.canonical.replace('"confidential"', '"restricted"');
      expect(forged).not.toBe(hashed.canonical);
      expect(await archiveFor(env.POLICY_ARCHIVE, hashed.hash).keep(hashed.hash, "t-forged", forged)).toEqual({ ok: false, reason: "hash_mismatch" });
      expect(await archiveFor(env.POLICY_ARCHIVE, hashed.hash).get(hashed.hash)).toBeNull();
    });
  });
});
