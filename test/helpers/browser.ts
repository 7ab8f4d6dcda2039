// The Chromium the page tests drive: CHROMIUM_PATH if set, else a system Chromium if the
// machine has one, else the one that ships inside the @sparticuz/chromium npm package (it
// unpacks to /tmp on first use), so `npm test` needs no system package. CHROMIUM_PATH=npm
// takes the package's even where there is a system one.
import { existsSync } from "node:fs";
import { type Browser, chromium } from "playwright-core";

const SYSTEM_CHROMIUMS = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"];
const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"];

export async function launchChromium(): Promise<Browser> {
  const chosen = process.env.CHROMIUM_PATH || undefined;
  if (chosen !== undefined && chosen !== "npm" && !existsSync(chosen)) throw new Error(`CHROMIUM_PATH is ${chosen}, which does not exist.`);
  const system = chosen === "npm" ? undefined : (chosen ?? SYSTEM_CHROMIUMS.find((path) => existsSync(path)));
  if (system) return await chromium.launch({ executablePath: system, args: ARGS });
  const packaged = (await import("@sparticuz/chromium")).default;
  // not the package's own args: they are for AWS Lambda (one process, web security off), and
  // the page tests check what a browser with its defaults does
  return await chromium.launch({ executablePath: await packaged.executablePath(), args: ARGS });
}
