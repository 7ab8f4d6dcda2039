// The development login page in Chromium, as a person whose desktop client opened it sees
// it: the page binds the sign-in to the browser with a `__Host-` cookie (Secure), which a
// real browser must keep on http://127.0.0.1 for the form to be accepted at all.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { grantSession } from "../../src/oauth/grant-session.ts";
import { launchChromium } from "../helpers/browser.ts";
import type { LocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS } from "../helpers/mcp-clients.ts";
import { connectWithOAuth, MemoryOAuthClient, type SignIn } from "../helpers/oauth-client.ts";
import { sharedServer } from "../helpers/shared-server.ts";

let server: LocalServer;
let browser: Browser;

beforeAll(async () => {
  server = await sharedServer();
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await server?.stop();
});

/** The person in Chromium: fills the development login page and signs in; the redirect to the client is caught, not followed. */
function signInWithChromium(label: string, problems: string[]): SignIn {
  return async (authorizationUrl, redirectUri) => {
    const page = await browser.newPage();
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    const back = new Promise<URL>((resolve) => {
      void page.route(`${redirectUri}**`, async (route) => {
        resolve(new URL(route.request().url()));
        await route.fulfill({ status: 200, contentType: "text/plain", body: "signed in; return to the app" });
      });
    });
    await page.goto(authorizationUrl.href);
    expect(await page.locator("h1").textContent()).toContain("agent-exec e2e client");
    await page.locator("select[name=tenant]").selectOption("acme");
    await page.locator("input[name=actor]").fill("browser-alice");
    await page.locator("input[name=session]").fill(label);
    await page.locator("input[name=scope][value=auditor]").check();
    await page.locator("button[value=approve]").click();
    const url = await back;
    await page.close();
    return url;
  };
}

describe("the development login page in Chromium", () => {
  it("signs a person in through a real browser (its binding cookie kept on http://127.0.0.1), and the client's token runs code", async () => {
    const problems: string[] = [];
    const label = `s-browser-${Date.now()}`;
    const oauth = new MemoryOAuthClient();
    const mcp = await connectWithOAuth(CLIENT_KINDS[1], server.mcpUrl, oauth, signInWithChromium(label, problems));
    try {
      const result = await mcp.callTool("analyze_readonly", { code: "export default () => 'from the browser sign-in'" });
      expect(result.isError ?? false).toBe(false);
    } finally {
      await mcp.close();
    }
    const session = await grantSession("acme", "browser-alice", label);
    const auditor = await server.token({ tenant: "acme", actor: "audit", session, roles: ["auditor"] });
    const response = await fetch(`${server.url}/v1/sessions/${session}/evidence`, { headers: { authorization: `Bearer ${auditor}` } });
    const { records } = (await response.json()) as { records: Array<{ actor: string; roles: string[] }> };
    expect(records[0]).toMatchObject({ actor: "browser-alice", roles: ["auditor"] });
    // the page runs no script and loads nothing: no console errors, no CSP violations
    expect(problems).toEqual([]);
  });
});
