import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { parse } from "dotenv";
import { importJWK, jwtVerify } from "jose";
import { describe, expect, it } from "vitest";
import { ensureDevKey } from "../../src/local/dev-keys.ts";
import { devVars } from "../../src/local/runtime-configs.ts";
import { AUDIENCE, ISSUER, newStateDir, ROOT } from "../helpers/local-server.ts";

const node = (args: string[], env: Record<string, string>) =>
  spawnSync(process.execPath, args, { cwd: ROOT, env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });

describe("npm start", () => {
  it("refuses to start with a malformed contract and names the file and the field", () => {
    const result = node([join(ROOT, "src/local/start.ts")], {
      CONTRACTS_DIR: join(ROOT, "test/fixtures/contracts-malformed"),
      STATE_DIR: newStateDir(),
      PORT: "1",
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("test/fixtures/contracts-malformed/broken-limits.json: limits.wallMs:");
    expect(result.stderr).toMatch(/300000/);
    expect(result.stdout).not.toContain("serving MCP");
  });

  it("refuses to start with a malformed connector and names the file and the field", () => {
    const result = node([join(ROOT, "src/local/start.ts")], {
      CONNECTORS_DIR: join(ROOT, "test/fixtures/connectors-malformed"),
      STATE_DIR: newStateDir(),
      PORT: "1",
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toContain("test/fixtures/connectors-malformed/issues.json: operations.addComment.path: path parameter {number}");
    expect(result.stdout).not.toContain("serving MCP");
  });

  it("refuses a PORT that is not a port", () => {
    const result = node([join(ROOT, "src/local/start.ts")], { PORT: "eighty", STATE_DIR: newStateDir() });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/PORT must be a TCP port number/);
  });

  it("refuses a SANDBOX_PROCESSES that is not a count from 0 to 16", () => {
    const result = node([join(ROOT, "src/local/start.ts")], { SANDBOX_PROCESSES: "17", STATE_DIR: newStateDir() });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/SANDBOX_PROCESSES must be a whole number from 0 to 16/);
  });
});

describe("the runtimes' .dev.vars", () => {
  it("reads back exactly through wrangler's parser (dotenv), JSON with apostrophes and backslashes included", () => {
    const values = {
      PLAIN: "abc $HOME # not a comment",
      JSON_VAR: JSON.stringify({ description: "the tenant's own \\'docs' (see #12) and \"quotes\"", n: 1 }),
      APOSTROPHE: "it's plain",
      MULTILINE: "line one\nline two",
    };
    const parsed = parse(devVars(values));
    expect({ ...parsed, JSON_VAR: JSON.parse(parsed.JSON_VAR ?? "null") }).toEqual({ ...values, JSON_VAR: JSON.parse(values.JSON_VAR) });
  });

  it("refuses a value it cannot quote, and a name wrangler would not read", () => {
    expect(() => devVars({ BOTH: "it's `both`" })).toThrow(/BOTH holds both/);
    expect(() => devVars({ "lower-case": "x" })).toThrow(/not a variable name/);
  });
});

describe("npm run keygen", () => {
  it.each(["EdDSA", "ES256"])("prints a private %s signing key with a kid, and its public half apart", (alg) => {
    const result = node([join(ROOT, "src/local/keygen.ts"), "--alg", alg], {});
    expect(result.status, result.stderr).toBe(0);
    const key = JSON.parse(result.stdout) as Record<string, string>;
    expect(key).toMatchObject({ alg, kid: expect.any(String), d: expect.any(String) });
    const publicHalf = JSON.parse(result.stderr.replace(/^public: /, "")) as Record<string, string>;
    expect(publicHalf.kid).toBe(key.kid);
    expect(publicHalf).not.toHaveProperty("d");
  });
});

describe("npm run token", () => {
  it("prints a JWT signed by the local development key with the requested claims", async () => {
    const stateDir = newStateDir();
    const result = node(
      [join(ROOT, "src/local/mint-token.ts"), "--tenant", "acme", "--actor", "alice", "--role", "auditor", "--session", "s-cli", "--ttl", "15m"],
      {
        STATE_DIR: stateDir,
      },
    );
    expect(result.status, result.stderr).toBe(0);
    const token = result.stdout.trim();
    const key = await ensureDevKey(stateDir);
    const { payload, protectedHeader } = await jwtVerify(token, await importJWK(key.publicJwk, "ES256"), { issuer: ISSUER, audience: AUDIENCE });
    expect(payload).toMatchObject({ sub: "alice", tenant: "acme", sid: "s-cli", roles: ["auditor"] });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(900);
    expect(protectedHeader).toMatchObject({ alg: "ES256", kid: key.publicJwk.kid });
    expect(result.stderr).toContain("session=s-cli");
  });

  it("gives every token its own session unless --session is given", () => {
    const stateDir = newStateDir();
    const sessions = [0, 1].map(() => {
      const result = node([join(ROOT, "src/local/mint-token.ts"), "--tenant", "acme", "--actor", "alice", "--json"], { STATE_DIR: stateDir });
      return (JSON.parse(result.stdout) as { session: string }).session;
    });
    expect(sessions[0]).toMatch(/^s-/);
    expect(sessions[0]).not.toBe(sessions[1]);
  });

  it.each([
    [["--actor", "alice"], /usage: npm run token/],
    [["--tenant", "acme/x", "--actor", "alice"], /--tenant must be/],
    [["--tenant", "acme", "--actor", "alice", "--ttl", "forever"], /--ttl must look like/],
  ])("explains bad flags %j", (args, message) => {
    const result = node([join(ROOT, "src/local/mint-token.ts"), ...args], { STATE_DIR: newStateDir() });
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
  });
});
