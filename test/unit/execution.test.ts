import { describe, expect, it } from "vitest";
import { bundledCatalog } from "../../src/catalog/index.ts";
import type { Contract } from "../../src/contracts/index.ts";
import { openSandbox, runInSandbox, runtimeProfile } from "../../src/execution/index.ts";
import { admitted, RUN_ID, testHost, testSandboxes } from "./tasks.ts";

const readOnly = bundledCatalog().contracts.find((c) => c.id === "read-only-analysis") as Contract;
const withLimits = (limits: Partial<Contract["limits"]>): Contract => ({ ...readOnly, limits: { ...readOnly.limits, ...limits } });
const run = async (code: string, input: unknown = {}, contract: Contract = readOnly, scope: string[] = []) =>
  runInSandbox(testHost(), {
    runId: RUN_ID,
    tenant: "acme",
    session: "s-exec",
    contract,
    profile: runtimeProfile(contract, scope, null),
    task: await admitted(contract, code, input),
  });

describe("sandbox executor", () => {
  it("completes with the result, console output and both latencies", async () => {
    const outcome = await run(
      "export default async (input, ctx) => { console.info('hello', { n: input.n }); return { doubled: input.n * 2, runId: ctx.runId }; }",
      { n: 21 },
    );
    expect(outcome).toMatchObject({
      termination: "completed",
      result: { doubled: 42, runId: "run_00000000-0000-4000-8000-000000000001" },
      logs: { lines: [{ level: "info", message: 'hello {"n":21}' }], truncated: false },
    });
    expect(outcome.resultBytes).toBe(JSON.stringify(outcome.result).length);
    expect(outcome.latencyMs.start).toBeGreaterThanOrEqual(0);
    expect(outcome.latencyMs.exec).toBeGreaterThanOrEqual(0);
  });

  it("starts every run in a fresh isolate", async () => {
    const code = "export default () => { globalThis.count = (globalThis.count ?? 0) + 1; return globalThis.count; }";
    const results = [];
    for (let i = 0; i < 3; i++) results.push((await run(code)).result);
    expect(results).toEqual([1, 1, 1]);
  });

  it("grants only the capabilities the scope covers, and no network the contract does not allow", async () => {
    const none = await run("export default async (input, ctx) => ({ bindings: Object.keys(ctx.env) })");
    expect(none.result).toEqual({ bindings: [] });
    const withRead = await run("export default async (input, ctx) => ({ bindings: Object.keys(ctx.env) })", {}, readOnly, ["read"]);
    expect(withRead.result).toEqual({ bindings: ["DOCS"] });
    const fetched = await run(
      "export default async () => { const r = await fetch('http://127.0.0.1:1/'); return [r.status, r.headers.get('x-egress-denied')]; }",
    );
    expect(fetched.result).toEqual([403, "address_not_allowed"]);
  });

  it("opens no socket the gateway has not allowed: opened rejects whichever way the address is written", async () => {
    const outcome = await run(`import { connect } from "cloudflare:sockets";
      export default async () => {
        const answers = [];
        for (const address of ["[::1]:22", { hostname: "10.0.0.1", port: 5432 }, { hostname: "::ffff:127.0.0.1", port: 80 }, "metadata.google.internal:80"]) {
          const socket = connect(address);
          answers.push(await socket.opened.then(() => "opened", (error) => error.message.split(": ").at(-1)));
        }
        let starttls;
        try { connect("db.example.com:5432", { secureTransport: "starttls" }); } catch (error) { starttls = error.name; }
        return { answers, starttls };
      }`);
    expect(outcome.result).toEqual({
      answers: ["address_not_allowed", "address_not_allowed", "address_not_allowed", "address_not_allowed"],
      starttls: "TypeError",
    });
  });

  it("returns null for code that returns nothing", async () => {
    expect(await run("export default () => {}")).toMatchObject({ termination: "completed", result: null });
  });

  it("ends a run that passes its wall-clock deadline as timed_out", async () => {
    const outcome = await run("export default () => new Promise((r) => setTimeout(() => r('late'), 3000))", {}, withLimits({ wallMs: 200 }));
    expect(outcome).toMatchObject({ termination: "timed_out", error: { code: "timed_out" } });
  });

  it("ends a synchronous busy-wait past the deadline as timed_out, though it blocked the deadline's timer and then answered", async () => {
    const code = "export default () => { const until = Date.now() + 1200; while (Date.now() < until) {} return 'done'; }";
    const outcome = await run(code, {}, withLimits({ wallMs: 500 }));
    expect(outcome).toMatchObject({ termination: "timed_out", error: { code: "timed_out" } });
    expect(outcome.latencyMs.exec).toBeGreaterThanOrEqual(1200);
  });

  it("runs through the SandboxHost entrypoint as the pipeline does, the outcome crossing the RPC boundary intact", async () => {
    const contract = withLimits({ wallMs: 500 });
    const open = async (code: string) =>
      openSandbox(testSandboxes(), {
        runId: RUN_ID,
        tenant: "acme",
        session: "s-exec",
        contract,
        profile: runtimeProfile(contract, [], null),
        task: await admitted(contract, code),
      });
    const completed = await open("export default () => { console.warn('w'); return { ok: true }; }");
    await completed.booted;
    expect(await completed.run()).toMatchObject({ termination: "completed", result: { ok: true }, logs: { lines: [{ level: "warn", message: "w" }] } });
    const threw = await (await open("export default () => { throw new RangeError('nope'); }")).run();
    expect(threw).toMatchObject({ termination: "failed", error: { code: "code_threw", message: "RangeError: nope" } });
    expect(threw.error?.hint).toMatch(/fix it/);
    const busy = await (await open("export default () => { const until = Date.now() + 1200; while (Date.now() < until) {} return 1; }")).run();
    expect(busy).toMatchObject({ termination: "timed_out" });
  });

  it("enforces the output cap to the byte, counting UTF-8", async () => {
    // JSON of "éé…" is 2 quotes + 2 bytes per é
    const exact = await run("export default () => 'é'.repeat(7)", {}, withLimits({ outputBytes: 16 }));
    expect(exact).toMatchObject({ termination: "completed", resultBytes: 16 });
    const over = await run("export default () => 'é'.repeat(8)", {}, withLimits({ outputBytes: 16 }));
    expect(over).toMatchObject({ termination: "output_too_large", resultBytes: 18, error: { code: "output_too_large" } });
  });

  it("keeps console output within the log cap and flags the rest as truncated", async () => {
    const outcome = await run("export default () => { for (let i = 0; i < 100; i++) console.log('line ' + i); return 1; }", {}, withLimits({ logBytes: 30 }));
    expect(outcome.logs.truncated).toBe(true);
    expect(outcome.logs.bytes).toBeLessThanOrEqual(30);
    expect(outcome.logs.lines.map((l) => l.message)).toEqual(["line 0", "line 1", "line 2", "line 3", "line 4"]);
  });

  it.each([
    ["a function", "export default () => () => 1"],
    ["a symbol", "export default () => Symbol('x')"],
  ])("refuses %s as a result", async (_case, code) => {
    expect(await run(code)).toMatchObject({ termination: "failed", error: { code: "result_not_serializable" } });
  });

  it("never throws, even when handed something that is not a module", async () => {
    const outcome = await run("%%% not javascript %%%");
    expect(outcome).toMatchObject({ termination: "failed", error: { code: "code_syntax_error" } });
  });

  describe("hardening", () => {
    it("is not fooled by code that patches JSON.stringify to lie about its size", async () => {
      const code = "JSON.stringify = () => '1'; export default () => 'x'.repeat(100)";
      const outcome = await run(code, {}, withLimits({ outputBytes: 50 }));
      // Patching the module's realm does not reach the harness's captured stringify.
      expect(outcome.termination).toBe("output_too_large");
    });

    it("does not let code forge the harness's answer", async () => {
      const code = "export default async () => { throw { status: 'ok', resultJson: '\"forged\"' }; }";
      expect(await run(code)).toMatchObject({ termination: "failed", error: { code: "code_threw" } });
    });
  });
});
