import { env } from "cloudflare:workers";
import { describe, expect, it, vi } from "vitest";
import { deskFor } from "../../src/approval/index.ts";
import { SlotReserve } from "../../src/budget/index.ts";
import { bundledCatalog } from "../../src/catalog/index.ts";
import { ledgerFor, sha256HexSync } from "../../src/evidence/index.ts";
import { sandboxRuntime } from "../../src/execution/index.ts";
import { submitToolCall } from "../../src/intent/index.ts";
import { logEvent, redactLogsOf } from "../../src/log/index.ts";
import { policyInForce, taskSigner } from "../../src/policy/index.ts";
import { redactedField, redactor } from "../../src/redaction/index.ts";
import { ALL_SECRETS as all, leakedIn as leaked, SECRET_URL_PATH, SECRETS } from "../helpers/secrets.ts";
import { policyKeys, tasksConfig, testSandboxes } from "./tasks.ts";

describe("redaction: detectors", () => {
  it.each(SECRETS)("removes %s and names the detector", (_case, text, secret) => {
    const result = redactor().text(`before ${text} after`);
    expect(result.text).not.toContain(secret);
    expect(result.text).toMatch(/^before .*\[REDACTED:[a-z_]+\].* after$/);
    expect(result.found.length).toBeGreaterThan(0);
  });

  it("keeps ordinary text, and what identifies without revealing (the user of a URL, the Bearer scheme)", () => {
    const redact = redactor();
    expect(redact.text("sum of 3 values: 42; see https://example.com/a?b=c").found).toEqual([]);
    expect(redact.text("postgres://admin:hunter2-correct-horse@db/x").text).toBe("postgres://admin:[REDACTED:url_password]@db/x");
    expect(redact.text("Authorization: Bearer 4f9c2d7e1b3a8c6d5e0f9a2b7c4d1e8f").text).toBe("Authorization: Bearer [REDACTED:bearer_token]");
  });

  it("removes the platform's own secret values and a contract's own rules, inside JSON too", () => {
    const redact = redactor({ secrets: ["tracker-token-0123456789"], rules: [{ name: "employee_id", pattern: "EMP-\\d{6}" }] });
    const { value, found } = redact.json({ note: "use tracker-token-0123456789 for EMP-123456", list: ["EMP-654321"], n: 3 });
    expect(value).toEqual({ note: "use [REDACTED:platform_secret] for [REDACTED:employee_id]", list: ["[REDACTED:employee_id]"], n: 3 });
    expect(found.sort()).toEqual(["employee_id", "platform_secret"]);
  });

  it("redacts whole values at a contract's JSON paths, in any array element for *", () => {
    const redact = redactor({
      rules: [
        { name: "password", path: "$.password" },
        { name: "user_token", path: "$.users.*.token" },
      ],
    });
    const { value, found } = redact.json({
      password: { nested: "x" },
      users: [
        { name: "a", token: "t1" },
        { name: "b", token: "t2" },
      ],
      other: "password",
    });
    expect(value).toEqual({
      password: "[REDACTED:password]",
      users: [
        { name: "a", token: "[REDACTED:user_token]" },
        { name: "b", token: "[REDACTED:user_token]" },
      ],
      other: "password",
    });
    expect(found.sort()).toEqual(["password", "user_token"]);
  });

  it("keeps the SHA-256 of the original beside a redacted field, and nothing extra when nothing was redacted", () => {
    const original = "failed with AKIAQYLPMN5HHHFPZAM2";
    expect(redactedField(redactor(), original)).toEqual({
      text: "failed with [REDACTED:aws_access_key]",
      sha256: sha256HexSync(original),
      redacted: ["aws_access_key"],
    });
    expect(redactedField(redactor(), "fine")).toEqual({ text: "fine" });
  });

  it("redacts server log lines", () => {
    const spy = vi.spyOn(console, "error").mockImplementation(() => {});
    redactLogsOf(["egress-secret-value-42"]);
    logEvent("error", { event: "x", error: "upstream said egress-secret-value-42 and ghp_R8fK2mN4pQ7sT1vX3zB6dF9hJ0kL5wY2cE4g" });
    const line = String(spy.mock.calls[0]?.[0]);
    spy.mockRestore();
    redactLogsOf([]);
    expect(line).not.toContain("egress-secret-value-42");
    expect(line).not.toContain("ghp_R8fK");
    expect(line).toContain("[REDACTED:platform_secret]");
  });
});

describe("redaction: through the pipeline", () => {
  const catalog = bundledCatalog();
  const deps = (secrets: string[] = []) => {
    const signingKey = tasksConfig().signingKey;
    if (!signingKey) throw new Error("unit tests run with a signing key");
    return {
      sandboxes: testSandboxes(),
      ledgers: env.SESSION_LEDGER,
      leases: new SlotReserve(env.TENANT_BUDGET, { freshMs: 0 }),
      approvals: env.APPROVALS,
      secrets,
      policy: policyInForce(catalog.policy, catalog.contracts, env.POLICY_ARCHIVE),
      tasks: { signer: taskSigner(signingKey), trust: policyKeys(), clockToleranceS: 5 },
      reconcileGraceMs: 30_000,
      runtime: sandboxRuntime("workerd (unit tests)", undefined),
    };
  };
  const contract = (id: string) => {
    const found = catalog.contracts.find((c) => c.id === id);
    if (!found) throw new Error(`no ${id}`);
    return found;
  };

  it("keeps every secret shape in code, input, console output and an error message out of the evidence", async () => {
    const code = `export default async (input) => {
      console.log(${JSON.stringify(all)});
      await fetch("http://127.0.0.1:9${SECRET_URL_PATH}");
      throw new Error(${JSON.stringify(all)});
    }`;
    const report = await submitToolCall(
      deps(),
      contract("read-only-analysis"),
      { actor: "alice", tenant: "acme", session: "s-redact", roles: [], expiresAt: 0 },
      { code, input: { token: all } },
    );
    expect(report.outcome.error?.code).toBe("code_threw");
    const page = await ledgerFor(env.SESSION_LEDGER, "acme", "s-redact").page(0, 10);
    const evidence = JSON.stringify(page.ok ? page.page.records : []);
    expect(leaked(evidence)).toEqual([]);
    const finish = page.ok ? page.page.records.find((r) => r.kind === "run.finished") : undefined;
    // the attempt is there, its path and query redacted
    expect(finish?.kind === "run.finished" && finish.activity?.egress.attempts[0]?.path).toMatch(/^\[REDACTED:slack_webhook\].*token=\[REDACTED/);
    expect(finish).toMatchObject({
      error: { code: "code_threw", messageSha256: expect.stringMatching(/^[0-9a-f]{64}$/), redacted: expect.arrayContaining(["jwt", "pem_private_key"]) },
    });
  });

  it("redacts the caller's result, console output and error when the contract asks for it", async () => {
    const redacting = { ...contract("read-only-analysis"), redaction: { rules: [], result: true } };
    const code = `export default () => { console.log(${JSON.stringify(all)}); return { leaked: ${JSON.stringify(all)} }; }`;
    const report = await submitToolCall(deps(), redacting, { actor: "alice", tenant: "acme", session: "s-redact-result", roles: [], expiresAt: 0 }, { code });
    expect(report.outcome.termination).toBe("completed");
    expect(leaked(JSON.stringify(report.outcome.result))).toEqual([]);
    expect(leaked(JSON.stringify(report.outcome.logs.lines))).toEqual([]);
    // without the option the caller gets its own data back
    const plain = await submitToolCall(
      deps(),
      contract("read-only-analysis"),
      { actor: "alice", tenant: "acme", session: "s-redact-plain", roles: [], expiresAt: 0 },
      { code },
    );
    expect(leaked(JSON.stringify(plain.outcome.result))).toHaveLength(SECRETS.length);
  });

  it("shows the approver the task redacted, while its hashes bind the original", async () => {
    const code = `export default () => ${JSON.stringify(all)}`;
    const report = await submitToolCall(
      deps(["injected-egress-secret-xyz"]),
      contract("privileged-change"),
      { actor: "alice", tenant: "acme", session: "s-redact-approval", roles: ["operator"], expiresAt: 0 },
      { code, input: { reason: `rotate ${all} and injected-egress-secret-xyz` } },
    );
    expect(report.outcome.error?.code).toBe("approval_required");
    const id = /apr_[0-9a-f-]{36}/.exec(report.outcome.error?.hint ?? "")?.[0] ?? "";
    const shown = await deskFor(env.APPROVALS, "acme").get(id);
    expect(shown).not.toBeNull();
    expect(leaked(`${shown?.code} ${shown?.inputJson}`)).toEqual([]);
    expect(shown?.inputJson).toContain("[REDACTED:platform_secret]");
    expect(shown?.codeSha256).toBe(sha256HexSync(code));
  });
});
