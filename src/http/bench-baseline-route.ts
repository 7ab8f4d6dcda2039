// POST /__bench/baseline: the same code through a bare LOADER.load() and one RPC
// call, with no identity, policy, evidence or caps. `npm run bench` compares the
// MCP path against it. Exists only when LOCAL_BENCH=1 (never in production).
import { z } from "zod";
import { PlatformError } from "../errors/index.ts";
import { SANDBOX_COMPATIBILITY_DATE } from "../execution/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";

export const BENCH_BASELINE_ROUTE = "/__bench/baseline";

const BARE_MAIN = `
import { WorkerEntrypoint } from "cloudflare:workers";
import task from "./task.js";
export default class extends WorkerEntrypoint {
  async run(input) { return JSON.stringify(await task(input, {})); }
}`;

const BodySchema = z.object({ code: z.string().min(1), input: z.unknown().optional() });

export async function serveBenchBaseline(request: Request, loader: WorkerLoader): Promise<Response> {
  const body = BodySchema.safeParse(await request.json().catch(() => null));
  if (!body.success) return errorResponse(new PlatformError("bad_request", "Send {code, input}."));
  const worker = loader.load({
    compatibilityDate: SANDBOX_COMPATIBILITY_DATE,
    mainModule: "main.js",
    modules: { "main.js": BARE_MAIN, "task.js": body.data.code },
    globalOutbound: null,
  });
  const entry = worker.getEntrypoint() as unknown as { run(input: unknown): Promise<string> };
  return jsonResponse({ result: JSON.parse(await entry.run(body.data.input ?? {})) });
}
