// The evidence viewer in a real browser (Chromium, driven by playwright-core; see test/helpers/browser.ts)
// against the real local server: a session with a completed, a denied, an egress-denied
// and a timed-out run renders as a timeline, filters, verifies, and a bundle altered on
// its way to the page shows as broken at the record that was changed.
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../helpers/browser.ts";
import { dataDirs, readOnlyContract } from "../helpers/data-dirs.ts";
import { type LocalServer, ROOT, startLocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient } from "../helpers/mcp-clients.ts";
import { ALL_SECRETS, leakedIn, SECRET_URL_PATH } from "../helpers/secrets.ts";

const ALICE = { tenant: "acme", actor: "alice", session: "s-viewer" };

let server: LocalServer;
let browser: Browser;
let token: string;
const runIds: Record<string, string> = {};

beforeAll(async () => {
  const quick = readOnlyContract("quick-probe", "probe_quick", { limits: { wallMs: 1000, outputBytes: 65536 } });
  const grants = [
    { contract: "read-only-analysis", maxDataClass: "confidential", actions: ["read"] },
    { contract: "quick-probe", maxDataClass: "internal" },
  ];
  server = await startLocalServer({
    env: dataDirs({ "quick-probe": quick }, { tenants: { acme: { roles: ["auditor"], phases: [1], teams: { all: { members: ["*"], grants } } } } }),
  });
  token = await server.token(ALICE);
  const agent = await connectClient(CLIENT_KINDS[1], server.mcpUrl, token);
  const call = async (name: string, tool: string, args: Record<string, unknown>) => {
    const result = await agent.callTool(tool, args);
    runIds[name] = (result.structuredContent as { runId: string }).runId;
  };
  await call("completed", "analyze_readonly", { code: "export default (input) => input.values.reduce((a, b) => a + b, 0)", input: { values: [1, 2, 3] } });
  await call("denied", "analyze_readonly", { code: "export default () => 'secret'", dataClass: "restricted" });
  await call("egress_denied", "analyze_readonly", {
    // secrets of every detector family in the URL, the logs and the error: the viewer shows none of them
    code: `export default async () => { console.log(${JSON.stringify(ALL_SECRETS)}); const r = await fetch('https://api.example.com/v1/items${SECRET_URL_PATH}'); if (!r.ok) throw new Error('blocked: ' + r.status + ${JSON.stringify(ALL_SECRETS)}); }`,
  });
  await call("timed_out", "probe_quick", { code: "export default () => new Promise((resolve) => setTimeout(resolve, 60_000))" });
  await agent.close();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** A fresh tab with the token pasted; fails the test on any script error or CSP violation. */
async function openSession(prepare?: (page: Page) => Promise<void>): Promise<{ page: Page; problems: string[] }> {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const problems: string[] = [];
  page.on("pageerror", (error) => problems.push(`pageerror: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  await prepare?.(page);
  await page.goto(`${server.url}/sessions/${ALICE.session}`);
  await page.locator("#token").fill(token);
  await page.locator("#token-form button[type=submit]").click();
  await page.locator("#timeline .run").first().waitFor();
  return { page, problems };
}

const run = (page: Page, name: string) => page.locator(`.run[data-run-id="${runIds[name]}"]`);

describe("evidence viewer", () => {
  it("renders the session's runs with identity, contract, decision, policy, outbound calls, termination and latencies", async () => {
    const { page, problems } = await openSession();
    expect(await page.locator("#timeline .run").count()).toBe(4);
    expect(await page.locator("#summary").textContent()).toContain("Tenant acme · 4 runs · 8 records");

    const completed = run(page, "completed");
    expect(await completed.getAttribute("data-termination")).toBe("completed");
    expect(await completed.locator('[data-field="identity"]').textContent()).toContain("alice (tenant acme");
    expect(await completed.locator('[data-field="decision"]').textContent()).toBe("allow");
    expect(await completed.locator('[data-field="latency"]').textContent()).toMatch(/^start [\d.]+ ms · exec [\d.]+ ms · total [\d.]+ ms$/);
    expect(await completed.textContent()).toContain("read-only-analysis@1.0.0");

    const denied = run(page, "denied");
    expect(await denied.getAttribute("data-termination")).toBe("denied");
    expect(await denied.locator('[data-field="decision"]').textContent()).toMatch(/^deny: /);
    expect(await denied.locator('[data-field="latency"]').textContent()).toContain("start – · exec –");

    const egress = run(page, "egress_denied");
    expect(await egress.getAttribute("data-termination")).toBe("egress_denied");
    expect(await egress.locator(".outbound li.egress.denied").textContent()).toContain("https://api.example.com");
    expect(await egress.locator(".outbound li.egress.denied").textContent()).toContain("[REDACTED:");
    expect(leakedIn(await page.content())).toEqual([]);

    const timedOut = run(page, "timed_out");
    expect(await timedOut.getAttribute("data-termination")).toBe("timed_out");
    expect(await timedOut.getAttribute("data-contract")).toBe("quick-probe");
    expect(await timedOut.locator('[data-field="error"]').textContent()).toMatch(/^timed_out: /);

    // the policy hash links to the snapshot carried in the bundle
    const link = completed.locator("a.policy-link");
    const href = await link.getAttribute("href");
    expect(href).toMatch(/^#policy-[0-9a-f]{64}$/);
    await link.click();
    // the page opens the snapshot on hashchange, which fires after the click returns
    const snapshot = page.locator(`details${href}[open]`);
    await snapshot.waitFor();
    expect(await snapshot.locator("pre").textContent()).toContain('"acme"');

    expect(problems).toEqual([]);
    await page.close();
  });

  it("filters by termination reason and by contract", async () => {
    const { page, problems } = await openSession();
    const shown = async () => await page.locator("#timeline .run").evaluateAll((items) => items.map((i) => (i as HTMLElement).dataset.termination));
    await page.locator("#filter-termination").selectOption("timed_out");
    expect(await shown()).toEqual(["timed_out"]);
    await page.locator("#filter-termination").selectOption("");
    await page.locator("#filter-contract").selectOption("read-only-analysis");
    expect(await shown()).toEqual(["completed", "denied", "egress_denied"]);
    await page.locator("#filter-termination").selectOption("completed");
    expect(await shown()).toEqual(["completed"]);
    expect(await page.locator("#shown").textContent()).toBe("1 of 4 runs shown");
    expect(problems).toEqual([]);
    await page.close();
  });

  it("verifies the chain in the browser against the server's keys, and keeps the token for the tab only", async () => {
    const { page, problems } = await openSession();
    await page.locator("#verify").click();
    const result = page.locator("#verify-result.verified");
    await result.waitFor();
    expect(await result.textContent()).toMatch(
      /^Verified: the signature, all 8 links of the chain and 1 policy hash check out; signed by kid .+ key from this server's JWKS\.$/,
    );
    expect(await page.evaluate(() => sessionStorage.getItem("agent-exec:viewer-token"))).toBe(token);
    // the README's picture (docs/viewer.png is a copy of this one)
    mkdirSync(join(ROOT, "results"), { recursive: true });
    await page.screenshot({ path: join(ROOT, "results/viewer.png") });
    // a reload in the same tab reads the session without asking again
    await page.reload();
    await page.locator("#timeline .run").first().waitFor();
    expect(await page.locator("#token-panel").isHidden()).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("shows a bundle altered on its way to the page as broken, naming the record", async () => {
    const { page, problems } = await openSession(async (tab) => {
      await tab.route("**/v1/sessions/*/export", async (route) => {
        const response = await route.fetch();
        const bundle = (await response.json()) as { records: Array<Record<string, unknown>> };
        // someone turns the timed-out run into a completed one
        const finish = bundle.records.find((r) => r.runId === runIds.timed_out && r.kind === "run.finished");
        if (finish) finish.termination = "completed";
        await route.fulfill({ response, json: bundle });
      });
    });
    await page.locator("#verify").click();
    const result = page.locator("#verify-result.broken");
    await result.waitFor();
    expect(await result.locator(".verdict").textContent()).toMatch(/^Broken: \d+ problems?;/);
    const first = result.locator(".problems li").first();
    expect(await first.getAttribute("data-code")).toBe("record_altered");
    expect(await first.textContent()).toContain(`record #8 (seq 8, run.finished, ${runIds.timed_out})`);
    expect(await run(page, "timed_out").getAttribute("class")).toContain("broken");
    expect(await page.locator(".run.broken").count()).toBe(1);
    expect(problems).toEqual([]);
    await page.close();
  });

  it("asks again when the token is refused, and says so", async () => {
    const page = await browser.newPage();
    await page.goto(`${server.url}/sessions/${ALICE.session}`);
    await page.locator("#token").fill("not-a-jwt");
    await page.locator("#token-form button[type=submit]").click();
    const status = page.locator("#status.error");
    await status.waitFor();
    expect(await status.textContent()).toMatch(/^The token was refused \(invalid_token: /);
    expect(await page.locator("#token-panel").isVisible()).toBe(true);
    expect(await page.evaluate(() => sessionStorage.getItem("agent-exec:viewer-token"))).toBeNull();
    await page.close();
  });
});
