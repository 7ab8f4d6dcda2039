// The approval page in Chromium: an approver opens the URL the caller was given,
// pastes a token once, reads what would run (the code, the input redacted, the plan, the
// policy hash) and approves it with a reason; the caller's retry then runs.
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { launchChromium } from "../helpers/browser.ts";
import type { LocalServer } from "../helpers/local-server.ts";
import { CLIENT_KINDS, connectClient, errorOf, type McpSession } from "../helpers/mcp-clients.ts";
import { ALL_SECRETS, leakedIn } from "../helpers/secrets.ts";
import { sharedServer } from "../helpers/shared-server.ts";

const ALICE = { tenant: "acme", actor: "alice", session: "s-page", roles: ["operator"] };
const BOB = { tenant: "acme", actor: "bob", session: "s-bob", roles: ["approver"] };
const CODE = "export default (input) => 'rotated ' + input.reason.length";
const SECRET = "ghp_R8fK2mN4pQ7sT1vX3zB6dF9hJ0kL5wY2cE4g";

let server: LocalServer;
let browser: Browser;
let alice: McpSession;

beforeAll(async () => {
  server = await sharedServer();
  alice = await connectClient(CLIENT_KINDS[1], server.mcpUrl, await server.token(ALICE));
  browser = await launchChromium();
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await alice?.close();
  await server?.stop();
});

describe("approval page", () => {
  it("shows an approver what would run, redacted, and records the approval", async () => {
    const input = { reason: `rotate the deploy key ${SECRET}`, found: ALL_SECRETS };
    const asked = errorOf(await alice.callTool("change_privileged", { code: CODE, input }));
    const url = /(http:\/\/\S+\/approvals\/apr_[0-9a-f-]{36})/.exec(asked.hint)?.[1];
    if (!url) throw new Error(`no approval URL in ${asked.hint}`);

    const page = await browser.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error") problems.push(message.text());
    });
    await page.goto(url);
    await page.locator("#token").fill(await server.token(BOB));
    await page.locator("#token-form button[type=submit]").click();
    await page.locator("#request:not([hidden])").waitFor();

    expect(await page.locator("#f-state").textContent()).toBe("pending");
    expect(await page.locator("#f-contract").textContent()).toBe("privileged-change@1.0.0 (privileged)");
    expect(await page.locator("#f-requester").textContent()).toContain("alice");
    expect(await page.locator("#f-code").textContent()).toBe(CODE);
    const shownInput = await page.locator("#f-input").textContent();
    expect(shownInput).toContain("[REDACTED:github_token]");
    expect(shownInput).not.toContain(SECRET);
    expect(leakedIn(`${shownInput} ${await page.content()}`)).toEqual([]);
    expect(await page.locator("#f-policyHash").textContent()).toMatch(/^[0-9a-f]{64}$/);
    expect(await page.locator("#f-plan").textContent()).toBe("no outbound destinations declared");

    await page.locator("#reason").fill("rotation planned in CHG-1234");
    await page.locator("#approve").click();
    await page.locator("#status", { hasText: "Recorded: approved." }).waitFor();
    expect(await page.locator("#f-decision").textContent()).toBe("approved by bob: rotation planned in CHG-1234");
    expect(problems).toEqual([]);
    await page.close();

    expect((await alice.callTool("change_privileged", { code: CODE, input })).structuredContent).toMatchObject({ termination: "completed" });
  });
});
