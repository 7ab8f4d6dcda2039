// Routes that exist only for `npm run bench` (LOCAL_BENCH=1, never in production):
//   POST /__bench/baseline  the same code through a bare LOADER.load() and one RPC call,
//                           with no identity, policy, evidence or caps;
//   POST /__bench/pipeline  the full run pipeline (intake, policy, signing and admission,
//                           evidence, sandbox) without MCP and token verification.
// Together with the MCP path they split the platform's overhead into its parts.
import { z } from "zod";
import type { Contract } from "../contracts/index.ts";
import { PlatformError } from "../errors/index.ts";
import { SANDBOX_COMPATIBILITY_DATE } from "../execution/index.ts";
import { type SubmitDeps, submitToolCall } from "../intent/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const BENCH_ROUTES = { baseline: "/__bench/baseline", pipeline: "/__bench/pipeline" } as const;

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

export async function serveBench(request: Request, route: string, deps: SubmitDeps, contract: Contract): Promise<Response> {
  const body = BodySchema.safeParse(await request.json().catch(() => null));
  if (!body.success) return errorResponse(new PlatformError("bad_request", "Send {code, input, session?}."));
  if (route === BENCH_ROUTES.baseline) {
    const worker = deps.host.loader.load({
      compatibilityDate: SANDBOX_COMPATIBILITY_DATE,
      mainModule: "main.js",
      modules: { "main.js": BARE_MAIN, "task.js": body.data.code },
      globalOutbound: null,
    });
    const entry = worker.getEntrypoint() as unknown as { run(input: unknown): Promise<string> };
    return jsonResponse({ result: JSON.parse(await entry.run(body.data.input ?? {})) });
  }
  const identity = { actor: "bench", tenant: body.data.tenant, session: body.data.session, roles: [], expiresAt: 0 };
  const report = await submitToolCall(deps, contract, identity, { code: body.data.code, input: body.data.input ?? {} });
  return jsonResponse({ termination: report.outcome.termination, result: report.outcome.result ?? null, error: report.outcome.error?.toJSON() ?? null });
}
