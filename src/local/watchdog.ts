// The watchdog the sandbox router (src/local/runtime/sandbox-router.ts) reports to, on its
// own loopback port, answering only the token the main runtime reads from its private
// .dev.vars (nothing `ps` shows reaches it): a sandbox process whose run is past its
// deadline and that does not answer a probe is restarted, and the router is told why a
// process went away.
import { timingSafeEqual } from "node:crypto";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { RuntimeProcess } from "./runtime-process.ts";

/** A sandbox process with a run past its deadline that does not answer a probe within this is restarted. */
const WATCHDOG_PROBE_MS = 400;

export class Watchdog {
  readonly #token: string;
  readonly #log: (line: string) => void;
  #sandboxes: readonly RuntimeProcess[] = [];

  constructor(options: { token: string; log: (line: string) => void }) {
    this.#token = options.token;
    this.#log = options.log;
  }

  /** Serves on a free loopback port; returns its URL for the router. */
  async listen(): Promise<string> {
    const server = createServer((req, res) =>
      this.#watchdog(req, res).catch((error: unknown) => {
        this.#log(`watchdog endpoint: ${String(error)}`);
        if (!res.headersSent) res.writeHead(500).end();
      }),
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}/watchdog`;
  }

  watch(sandboxes: readonly RuntimeProcess[]): void {
    this.#sandboxes = sandboxes;
  }

  async #watchdog(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const presented = Buffer.from(/^Bearer (.+)$/.exec(req.headers.authorization ?? "")?.[1] ?? "");
    const token = Buffer.from(this.#token);
    if (req.method !== "POST" || presented.length !== token.length || !timingSafeEqual(presented, token)) {
      req.resume();
      res.writeHead(404).end();
      return;
    }
    let body: { sandbox?: unknown; runId?: unknown; at?: unknown };
    try {
      body = JSON.parse((await readAll(req)).toString("utf8"));
    } catch {
      res.writeHead(400).end();
      return;
    }
    const sandbox = typeof body.sandbox === "number" ? this.#sandboxes[body.sandbox] : undefined;
    if (!sandbox) {
      res.writeHead(400).end();
      return;
    }
    const reply = (value: object): void => {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(value));
    };
    if (req.url === "/watchdog/overdue") {
      if (!sandbox.serving) return reply({ action: "restarting" });
      if (await sandbox.healthy(WATCHDOG_PROBE_MS)) return reply({ action: "answering" });
      this.#log(`watchdog: run ${String(body.runId)} is past its deadline and ${sandbox.spec.name} does not answer; restarting its runtime`);
      sandbox.killRuntime();
      return reply({ action: "restarted" });
    }
    if (req.url === "/watchdog/lost") {
      const loss = await sandbox.settledLoss(typeof body.at === "number" ? body.at : Date.now());
      return reply({ cause: loss?.cause ?? "crashed" });
    }
    res.writeHead(404).end();
  }
}

function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks)));
    req.on("error", reject);
  });
}
