// Routes that exist only for `npm run bench` (LOCAL_BENCH=1, never in production):
//   POST /__bench/baseline  the same code through a bare LOADER.load() and one RPC call,
//                           with no identity, policy, evidence or caps;
//   POST /__bench/host      the same code through the sandbox host, as the pipeline reaches it
//                           (locally: the router and a sandbox process), with no pipeline;
//   POST /__bench/pipeline  the full run pipeline (intake, policy, signing and admission,
//                           evidence, sandbox) without MCP and token verification;
//   POST /__bench/fetch     the host Worker fetching a URL n times directly, no gateway;
//   POST /__bench/budget    one tenant's slots leased and given back as fast as they go, with
//                           `inFlight` at once: through this isolate's reserve, or each one
//                           from the tenant's budget object (its ceiling);
//   POST /__bench/ledger    `runs` synthetic runs (a start and a finish record each) appended
//                           to a session's ledger, the way the pipeline appends them: a
//                           session large enough to export in ranges.
// Together with the MCP path they split the platform's overhead into its parts.
import { z } from "zod";
import { DEFAULT_BUDGET, endRun, SlotReserve, type TenantBudget } from "../budget/index.ts";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { ledgerFor, NO_POLICY_HASH, type SessionLedger } from "../evidence/index.ts";
import { outcomeFromWire, runtimeProfile, SANDBOX_COMPATIBILITY_DATE } from "../execution/index.ts";
import { type SubmitDeps, submitToolCall } from "../intent/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const BENCH_ROUTES = {
  baseline: "/__bench/baseline",
  host: "/__bench/host",
  pipeline: "/__bench/pipeline",
  fetch: "/__bench/fetch",
  budget: "/__bench/budget",
  ledger: "/__bench/ledger",
} as const;

const LedgerFillSchema = z.object({
  tenant: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  session: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  runs: z.int().min(1).max(10_000),
});

const BARE_MAIN = `
import { WorkerEntrypoint } from "cloudflare:workers";
import task from "./task.js";
export default class extends WorkerEntrypoint {
  async run(input) { return JSON.stringify(await task(input, {})); }
}`;

const BodySchema = z.object({
  code: z.string().min(1),
  input: z.unknown().optional(),
  tenant: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/)
    .default("acme"),
  session: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/)
    .default("bench-pipeline"),
});

/** One tenant's leases for `ms`, `inFlight` at once, through the reserve (`reserve: true`) or straight to the budget object. */
const BudgetBenchSchema = z.object({
  tenant: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  ms: z.int().min(100).max(30_000),
  inFlight: z.int().min(1).max(256),
  reserve: z.boolean(),
});

/** The host Worker fetching a URL n times in a row, directly (no gateway): the egress baseline. */
const FetchSchema = z.object({ url: z.url(), n: z.int().min(1).max(1_000) });

export async function serveBench(
  request: Request,
  route: string,
  deps: SubmitDeps & { loader: WorkerLoader; budgets: DurableObjectNamespace<TenantBudget> },
  contract: Contract,
  waitUntil?: (promise: Promise<unknown>) => void,
): Promise<Response> {
  if (route === BENCH_ROUTES.fetch) {
    const parsed = FetchSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) return errorResponse(new PlatformError("bad_request", "Send {url, n}."));
    const started = Date.now();
    for (let i = 0; i < parsed.data.n; i++) await (await fetch(parsed.data.url)).text();
    return jsonResponse({ totalMs: Date.now() - started, n: parsed.data.n });
  }
  if (route === BENCH_ROUTES.budget) {
    const parsed = BudgetBenchSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) return errorResponse(new PlatformError("bad_request", "Send {tenant, ms, inFlight, reserve}."));
    return jsonResponse(await leaseLoop(reserve(deps, parsed.data.reserve), parsed.data, contract, waitUntil));
  }
  if (route === BENCH_ROUTES.ledger) {
    const parsed = LedgerFillSchema.safeParse(await request.json().catch(() => null));
    if (!parsed.success) return errorResponse(new PlatformError("bad_request", "Send {tenant, session, runs}."));
    return jsonResponse(await fillLedger(deps.ledgers, parsed.data, contract));
  }
  const body = BodySchema.safeParse(await request.json().catch(() => null));
  if (!body.success) return errorResponse(new PlatformError("bad_request", "Send {code, input, session?}."));
  if (route === BENCH_ROUTES.baseline) {
    const worker = deps.loader.load({
      compatibilityDate: SANDBOX_COMPATIBILITY_DATE,
      mainModule: "main.js",
      modules: { "main.js": BARE_MAIN, "task.js": body.data.code },
      globalOutbound: null,
    });
    const entry = worker.getEntrypoint() as unknown as { run(input: unknown): Promise<string> };
    return jsonResponse({ result: JSON.parse(await entry.run(body.data.input ?? {})) });
  }
  if (route === BENCH_ROUTES.host) {
    // No policy, no signature, no evidence: the host runs what its caller hands it.
    const run = deps.sandboxes.start({
      runId: `run_${crypto.randomUUID()}`,
      tenant: body.data.tenant,
      session: body.data.session,
      contract,
      profile: runtimeProfile(contract, [], null),
      task: { code: body.data.code, input: body.data.input ?? {} },
    });
    await run.booted();
    const outcome = outcomeFromWire(await run.run());
    return jsonResponse({ termination: outcome.termination, result: outcome.result ?? null });
  }
  const identity = { actor: "bench", tenant: body.data.tenant, session: body.data.session, roles: [], expiresAt: 0 };
  const report = await submitToolCall(deps, contract, identity, { code: body.data.code, input: body.data.input ?? {} }, waitUntil ? { waitUntil } : {});
  return jsonResponse({ termination: report.outcome.termination, result: report.outcome.result ?? null, error: report.outcome.error?.toJSON() ?? null });
}

/** Leases and gives back slots in `inFlight` loops for `ms`; every lease must be granted (the budget has room for all). */
function reserve(deps: { leases: SlotReserve; budgets: DurableObjectNamespace<TenantBudget> }, keep: boolean): SlotReserve {
  return keep ? deps.leases : new SlotReserve(deps.budgets, { freshMs: 0 });
}

async function leaseLoop(
  leases: SlotReserve,
  { tenant, ms, inFlight }: z.infer<typeof BudgetBenchSchema>,
  contract: Contract,
  waitUntil?: (promise: Promise<unknown>) => void,
): Promise<{ leases: number; perSecond: number; refused: number }> {
  // room to spare: a reserve keeps slots only while the lane is uncontended
  const budget = { ...DEFAULT_BUDGET, interactive: { maxInFlight: inFlight * 2, queueMax: 0 } };
  const until = Date.now() + ms;
  let granted = 0;
  let refused = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: inFlight }, async () => {
      while (Date.now() < until) {
        const runId = `run_${crypto.randomUUID()}`;
        const slot = await leases.acquire(tenant, runId, contract, "interactive", budget, contract.limits.wallMs);
        if (!slot.ok) {
          refused++;
          continue;
        }
        granted++;
        // as a run does: the reserve reports its kept slots after the answer, on waitUntil
        await endRun(leases, slot, {
          tenant,
          runId,
          receivedAt: Date.now(),
          termination: "completed",
          latencyMs: { start: 0, exec: 0 },
          ...(waitUntil ? { waitUntil } : {}),
        });
      }
    }),
  );
  await leases.flush(tenant);
  return { leases: granted, perSecond: Math.round((granted / (performance.now() - started)) * 1000), refused };
}

/** Appends `runs` completed runs to a session's ledger, one start and one finish record each, as the pipeline writes them. */
async function fillLedger(
  ledgers: DurableObjectNamespace<SessionLedger>,
  { tenant, session, runs }: z.infer<typeof LedgerFillSchema>,
  contract: Contract,
): Promise<{ records: number; head: number }> {
  const ledger = ledgerFor(ledgers, tenant, session);
  let head = 0;
  for (let i = 0; i < runs; i++) {
    const runId = `run_${crypto.randomUUID()}`;
    const header = {
      runId,
      tenant,
      actor: "bench",
      session,
      contract: { id: contract.id, version: contract.version, class: contract.class },
      policyHash: NO_POLICY_HASH,
      decision: { outcome: "allow" as const, reasons: [], dataClass: "internal", team: "bench", scope: ["read"] },
    };
    const started = await ledger.append({
      kind: "run.started",
      ...header,
      roles: [],
      lane: "interactive",
      codeSha256: "a".repeat(64),
      codeBytes: 52,
      inputSha256: "b".repeat(64),
      inputBytes: 7,
      intent: { source: "mcp" },
      task: null,
      plan: null,
      profile: { capabilities: [], egressRules: 0 },
      deadlineAt: Date.now() + contract.limits.wallMs,
    });
    if (!started.ok) throw new PlatformError("internal_error", `the ledger refused a start: ${started.detail}`);
    const finished = await ledger.append({
      kind: "run.finished",
      ...header,
      startSeq: started.seq,
      termination: "completed",
      latencyMs: { start: 5, exec: 1, total: 9 },
      resultBytes: 7,
      logs: { lines: 0, bytes: 0, truncated: false },
    });
    if (!finished.ok) throw new PlatformError("internal_error", `the ledger refused a finish: ${finished.detail}`);
    head = finished.seq;
  }
  return { records: runs * 2, head };
}
