// The local front door: serves PORT and passes each request through to the main runtime
// unread (it parses no URL or body and never sends a request twice). A request caught in a main runtime that went away is
// answered at once; one that arrives while it comes back waits for it (at most HOLD_MS) or
// is answered that it is unavailable; while the contracts or policy on disk are invalid,
// every request is refused.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { defaultHint, type ErrorCode } from "../errors/index.ts";
import type { Loss, RuntimeProcess } from "./runtime-process.ts";

/** The longest a request waits for the main runtime to serve again before it is told it is unavailable. */
const HOLD_MS = 5_000;
/** Before a reload on changed data, the requests in the main runtime get this long to be answered. */
const DRAIN_MS = 30_000;

export type Problem = { code: ErrorCode; message: string };
type InFlight = { since: number; fail: (problem: Problem) => void };

export class FrontDoor {
  readonly #port: number;
  readonly #log: (line: string) => void;
  #main: RuntimeProcess | null = null;
  readonly #inFlight = new Set<InFlight>();
  #waiters: Array<() => void> = [];
  #reloading = false;
  /** Set while the contracts or policy on disk are invalid: every request is answered with it. */
  broken: Problem | null = null;

  constructor(options: { port: number; log: (line: string) => void }) {
    this.#port = options.port;
    this.#log = options.log;
  }

  /** Serves PORT; throws (EADDRINUSE) before anything else is started. */
  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) =>
      this.#handle(req, res).catch((error: unknown) => {
        // a request Node's server took but its client cannot send on (an odd path, a header): answered, never fatal
        this.#log(`front door: ${req.method} ${req.url}: ${String(error)}`);
        answer(res, 502, { code: "bad_request", message: "The local front door could not pass this request on." }, req);
      }),
    );
    server.keepAliveTimeout = 5_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#port, "127.0.0.1", () => resolve());
    });
    return server.address() as AddressInfo;
  }

  /** The main runtime to pass requests to; requests wait until it is set. */
  serve(main: RuntimeProcess): void {
    this.#main = main;
    this.mainUp();
  }

  /** Called by the main runtime's hooks: what was in it is lost; answer it now rather than let it hang. */
  mainLost(loss: Loss): void {
    for (const request of [...this.#inFlight]) {
      if (request.since <= loss.at)
        request.fail({ code: "runtime_restarted", message: `The local runtime went away (${loss.cause.replace("_", " ")}) while this request was in it.` });
    }
  }

  /**
   * Restarts the main runtime once the requests in it are answered (at most DRAIN_MS);
   * requests that arrive meanwhile wait for it as for any restart.
   */
  async reloadMain(restart: () => Promise<void>): Promise<void> {
    this.#reloading = true;
    try {
      const until = Date.now() + DRAIN_MS;
      while (this.#inFlight.size > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
      await restart();
    } finally {
      this.#reloading = false;
      this.mainUp();
    }
  }

  mainUp(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    if (this.broken) return answer(res, 503, this.broken, req);
    if ((this.#reloading || !this.#main?.serving) && !(await this.#waitForMain())) {
      return answer(res, 503, { code: "runtime_restarted", message: `The local runtime is restarting and did not serve again within ${HOLD_MS} ms.` }, req);
    }
    const main = this.#main;
    if (this.broken || !main) return answer(res, 503, this.broken ?? { code: "runtime_restarted", message: "The local runtime is not serving." }, req);
    const entry: InFlight = { since: Date.now(), fail: () => {} };
    this.#inFlight.add(entry);
    try {
      await this.#forward(main.port, req, res, entry);
    } finally {
      this.#inFlight.delete(entry);
    }
  }

  /** Passes one request through to the main runtime, and its answer back; `entry.fail` answers it instead. */
  #forward(port: number, req: IncomingMessage, res: ServerResponse, entry: InFlight): Promise<void> {
    return new Promise<void>((done) => {
      const upstream = httpRequest({ host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers }, (response) => {
        // wrangler's proxy answers 503 itself when the runtime died under a request: say what happened, in our shape
        if (response.statusCode === 503 && !response.headers["x-agent-exec"]) {
          let text = "";
          response.on("data", (chunk: Buffer) => (text += chunk.toString()));
          response.on("end", () => {
            this.#log(`front door: ${req.method} ${req.url}: the runtime answered 503 itself: ${text.slice(0, 300)}`);
            entry.fail({ code: "runtime_restarted", message: "The local runtime went away while this request was in it." });
          });
          return;
        }
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
        response.on("end", () => done());
        response.on("error", () => entry.fail({ code: "runtime_restarted", message: "The local runtime went away while answering." }));
      });
      entry.fail = (problem) => {
        upstream.destroy();
        if (!res.headersSent) answer(res, 503, problem);
        else res.end();
        done();
      };
      upstream.on("error", (error) => {
        if (this.#main?.serving) this.#log(`front door: ${req.method} ${req.url}: ${error.message}`);
        entry.fail({ code: "runtime_restarted", message: "The local runtime went away while this request was in it." });
      });
      req.pipe(upstream);
      res.on("close", () => {
        // the client gave up: the upstream request goes too (the Worker sees the abort)
        if (!res.writableFinished) upstream.destroy();
        done();
      });
    });
  }

  #waitForMain(): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(
        () => {
          this.#waiters = this.#waiters.filter((w) => w !== wake);
          resolve(this.#main?.serving === true && !this.#reloading);
        },
        // a reload waits for the requests in the runtime first: the ones behind it wait as long
        this.#reloading ? DRAIN_MS + HOLD_MS : HOLD_MS,
      );
      const wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      this.#waiters.push(wake);
    });
  }
}

function answer(res: ServerResponse, status: number, problem: Problem, req?: IncomingMessage): void {
  req?.resume();
  if (res.headersSent) {
    res.end();
    return;
  }
  res
    .writeHead(status, { "content-type": "application/json", "x-content-type-options": "nosniff", "x-agent-exec-supervisor": problem.code })
    .end(JSON.stringify({ error: { ...problem, hint: defaultHint(problem.code) } }));
}
