// The local supervisor: a front proxy on PORT for the runtime wrangler runs on an internal
// port. Open-source workerd enforces no CPU limit, so a busy loop in one sandbox blocks the
// whole local runtime, and a memory bomb crashes it. The supervisor keeps track of the calls
// that carry runs; when one is past its deadline and the runtime no longer answers, it kills
// the runtime process (wrangler restarts it in about half a second). When the runtime is
// lost under calls (killed, or crashed by itself), it has the Worker close those sessions'
// unfinished runs in their ledgers (timed_out past the deadline, cancelled otherwise) and
// answers each such call with that run as a tool error. Calls without runs are retried once.
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { Turnstile, type TurnstileLimits } from "../budget/turnstile.ts";
import { type ClosedRun, classify, lostRunResponse, type RunRequest, type ToolInfo } from "./run-requests.ts";
import { killProcesses, userRuntimePids } from "./runtime-processes.ts";

const MARKER = "x-agent-exec";
// The Worker's names for them are in src/http/local-supervisor-route.ts (not imported: it needs the Workers runtime).
const SUPERVISOR_HEADER = "x-local-supervisor";
const HELD_HEADER = "x-local-supervisor-held-ms";
const MAX_BODY = 8 * 1024 * 1024;

export type SupervisorOptions = {
  port: number;
  upstreamPort: number;
  /** The wrangler process whose user runtime is restarted. */
  wranglerPid: number;
  tools: ReadonlyMap<string, ToolInfo>;
  token: string;
  tenantClaim: string;
  /** The Worker's turnstile limits: the supervisor holds a tenant's calls beyond its share before they reach the runtime. */
  turns: TurnstileLimits;
  log: (line: string) => void;
};

type Loss = { at: number; cause: "watchdog" | "crash" | "out_of_memory"; recovered: Promise<void>; closed: Map<string, Promise<ClosedRun[]>> };

export class Supervisor {
  private readonly inflight = new Set<RunRequest>();
  private readonly byContract: Map<string, ToolInfo>;
  private loss: Loss | null = null;
  private outOfMemoryAt = 0;
  private timer: ReturnType<typeof setInterval> | undefined;
  private checking = false;
  private readonly line: Turnstile;

  private readonly options: SupervisorOptions;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.byContract = new Map([...options.tools.values()].map((info) => [info.contractId, info]));
    this.line = new Turnstile(options.turns);
  }

  async listen(): Promise<AddressInfo> {
    const server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => server.listen(this.options.port, "127.0.0.1", resolve));
    this.timer = setInterval(() => void this.watch(), 250);
    return server.address() as AddressInfo;
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  /** Called when the runtime's output says it ran out of memory (it then crashes and restarts). */
  noteOutOfMemory(): void {
    this.outOfMemoryAt = Date.now();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const body = await readBody(req);
    if (body === null) {
      res
        .writeHead(413, { "content-type": "application/json" })
        .end(JSON.stringify({ error: { code: "bad_request", message: "Body too large.", hint: "Send less." } }));
      return;
    }
    const arrivedAt = Date.now();
    const run = classify(
      req.method ?? "GET",
      (req.url ?? "/").split("?")[0] ?? "/",
      req.headers,
      body,
      this.options.tools,
      this.byContract,
      this.options.tenantClaim,
    );
    // Locally every tenant's calls reach one runtime thread. A call beyond its tenant's share
    // waits here, outside the runtime, where waiting costs that thread nothing; past the
    // longest wait it goes on anyway, and the Worker's own turnstile answers it (and records it).
    const turn = run ? await this.line.enter(run.tenant, "interactive") : null;
    if (run && turn) run.deadlineAt += turn.waitedMs;
    if (run) this.inflight.add(run);
    try {
      // the Worker counts the time held here into the call's wait (and against the longest wait)
      const held: Record<string, string> = turn && turn.waitedMs > 0 ? { [SUPERVISOR_HEADER]: this.options.token, [HELD_HEADER]: String(turn.waitedMs) } : {};
      let forwarded = await this.forward(req, body, res, held);
      if (forwarded === "answered") return;
      // The runtime was lost under this request (killed by us, or crashed by itself).
      const loss = this.noteLoss(arrivedAt);
      await loss.recovered;
      if (!run) {
        // Nothing of a run rode on it: ask again, once.
        if (forwarded === "lost") forwarded = await this.forward(req, body, res, held);
        if (forwarded !== "answered" && !res.headersSent)
          res
            .writeHead(503, { "content-type": "application/json" })
            .end(JSON.stringify({ error: { code: "runtime_restarted", message: "The local runtime restarted while answering.", hint: "Retry." } }));
        else if (forwarded !== "answered") res.end();
        return;
      }
      const closed = await this.closedRunsFor(loss, run);
      const fallback = loss.cause === "watchdog" ? "runtime_restarted" : "runtime_crashed";
      const answer = lostRunResponse(
        run,
        run.calls.map((call) => takeRun(closed, call.contractId)),
        fallback,
      );
      if (forwarded === "lost-mid-stream") {
        // The SSE stream was already open: deliver the answer as its last event.
        res.end(`event: message\ndata: ${JSON.stringify(answer.body)}\n\n`);
        return;
      }
      res.writeHead(answer.status, { "content-type": "application/json", "x-agent-exec-supervisor": loss.cause }).end(JSON.stringify(answer.body));
    } finally {
      if (run) this.inflight.delete(run);
      if (turn?.ok) turn.leave();
    }
  }

  /**
   * Proxies one request. "lost": the runtime gave no answer of our Worker's (nothing was
   * sent to the client yet); "lost-mid-stream": it died while streaming an answer whose
   * headers were already sent (the response is left open for the caller to finish).
   */
  private forward(
    req: IncomingMessage,
    body: Buffer,
    res: ServerResponse,
    extraHeaders: Record<string, string> = {},
  ): Promise<"answered" | "lost" | "lost-mid-stream"> {
    return new Promise((resolve) => {
      const upstream = httpRequest(
        {
          host: "127.0.0.1",
          port: this.options.upstreamPort,
          method: req.method,
          path: req.url,
          headers: { ...req.headers, ...extraHeaders, "content-length": String(body.length) },
        },
        (answer) => {
          if (answer.headers[MARKER] === undefined && (answer.statusCode ?? 500) >= 500) {
            answer.resume();
            resolve("lost");
            return;
          }
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          let settled = false;
          answer.on("data", (chunk: Buffer) => res.write(chunk));
          answer.on("end", () => {
            if (settled) return;
            settled = true;
            if (answer.complete) {
              res.end();
              resolve("answered");
            } else resolve("lost-mid-stream");
          });
          const broken = () => {
            if (settled) return;
            settled = true;
            resolve("lost-mid-stream");
          };
          answer.on("aborted", broken);
          answer.on("error", broken);
        },
      );
      upstream.on("error", () => resolve("lost"));
      upstream.end(body);
    });
  }

  /** Every 250 ms: a call past its deadline while the runtime does not answer means a wedged runtime. */
  private async watch(): Promise<void> {
    if (this.checking || this.loss) return;
    const now = Date.now();
    const overdue = [...this.inflight].filter((run) => now > run.deadlineAt);
    if (overdue.length === 0) return;
    this.checking = true;
    try {
      if (await this.healthy(1_500)) return;
      const pids = userRuntimePids(this.options.wranglerPid, this.options.upstreamPort);
      this.options.log(
        `watchdog: ${overdue.length} call(s) past their deadline and the runtime does not answer; restarting it (pid ${pids.join(", ") || "?"})`,
      );
      this.noteLoss(Date.now(), "watchdog");
      killProcesses(pids);
    } finally {
      this.checking = false;
    }
  }

  /**
   * One loss event per runtime restart, shared by the requests it cut off: those that
   * arrived before it happened. A request that arrived later was lost to a new event.
   */
  private noteLoss(arrivedAt: number, cause?: Loss["cause"]): Loss {
    if (this.loss && this.loss.at >= arrivedAt) return this.loss;
    const at = Date.now();
    const loss: Loss = {
      at,
      cause: cause ?? "crash",
      closed: new Map(),
      // Settle the cause once the runtime is back: its out-of-memory line may come after the connection dropped.
      recovered: this.waitHealthy(60_000).then(() => {
        if (loss.cause === "crash" && this.outOfMemoryAt >= at - 10_000) loss.cause = "out_of_memory";
      }),
    };
    this.loss = loss;
    void loss.recovered.then(() => {
      this.options.log(
        `watchdog: runtime serving again ${Date.now() - at} ms after the ${loss.cause === "watchdog" ? "restart" : loss.cause.replace("_", " ")}`,
      );
      // Keep the event a moment so requests failing just behind it share it.
      setTimeout(() => {
        if (this.loss === loss) this.loss = null;
      }, 1_000);
    });
    return loss;
  }

  private closedRunsFor(loss: Loss, run: RunRequest): Promise<ClosedRun[]> {
    const key = `${run.tenant}/${run.session}`;
    let closed = loss.closed.get(key);
    if (!closed) {
      closed = this.reconcile(run.tenant, run.session, loss);
      loss.closed.set(key, closed);
    }
    return closed;
  }

  private async reconcile(tenant: string, session: string, loss: Loss): Promise<ClosedRun[]> {
    const body = JSON.stringify({ sessions: [{ tenant, session }], before: loss.at, cause: loss.cause });
    for (let attempt = 0; attempt < 5; attempt++) {
      try {
        const response = await fetch(`http://127.0.0.1:${this.options.upstreamPort}/__local/reconcile`, {
          method: "POST",
          headers: { [SUPERVISOR_HEADER]: this.options.token, "content-type": "application/json" },
          body,
          signal: AbortSignal.timeout(10_000),
        });
        if (response.ok) return ((await response.json()) as { closed: ClosedRun[] }).closed;
      } catch {
        // the runtime may still be coming back
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    this.options.log(`watchdog: could not reconcile ${tenant}/${session}; its unfinished runs stay open in the ledger`);
    return [];
  }

  private async healthy(timeoutMs: number): Promise<boolean> {
    try {
      const response = await fetch(`http://127.0.0.1:${this.options.upstreamPort}/`, { signal: AbortSignal.timeout(timeoutMs) });
      return response.ok && response.headers.has(MARKER);
    } catch {
      return false;
    }
  }

  private async waitHealthy(limitMs: number): Promise<void> {
    const until = Date.now() + limitMs;
    while (Date.now() < until) {
      if (await this.healthy(1_000)) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }
}

/** Takes the first closed run of the contract from the list (each run answers one call). */
function takeRun(closed: ClosedRun[], contractId: string): ClosedRun | undefined {
  const index = closed.findIndex((run) => run.contractId === contractId);
  return index < 0 ? undefined : closed.splice(index, 1)[0];
}

function readBody(req: IncomingMessage): Promise<Buffer | null> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on("data", (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY) chunks.push(chunk);
    });
    req.on("end", () => resolve(size > MAX_BODY ? null : Buffer.concat(chunks)));
    req.on("error", () => resolve(null));
  });
}
