// What the local supervisor needs to know about a request: whether it carries runs (MCP
// tools/call, POST /v1/tasks), for whom, with which deadline; and how to answer those runs
// when the runtime was lost under them.
import { defaultHint, type ErrorCode } from "../errors/index.ts";

/** A tool's contract, as far as the supervisor needs it. */
export type ToolInfo = { contractId: string; wallMs: number };

/** Same rule as the Worker's deadlineOf(): wall-clock limit plus 2 s for boot and records. */
export const DEADLINE_GRACE_MS = 2_000;

export type RunCall = { jsonrpcId: string | number | null; contractId: string };

export type RunRequest = {
  kind: "mcp" | "tasks";
  tenant: string;
  session: string;
  calls: RunCall[];
  receivedAt: number;
  deadlineAt: number;
};

export type ClosedRun = {
  tenant: string;
  session: string;
  runId: string;
  contractId: string;
  termination: string;
  error: { code: string; message: string };
  policyHash: string;
  decision: { outcome: string; reasons: string[]; dataClass: string } | null;
};

/** Reads the bearer token's tenant and session claims without verifying them: the Worker does that. */
function caller(authorization: string | undefined, tenantClaim: string): { tenant: string; session: string } | null {
  const token = /^Bearer\s+(\S+)$/i.exec(authorization ?? "")?.[1];
  const payload = token?.split(".")[1];
  if (!payload) return null;
  try {
    const claims = JSON.parse(Buffer.from(payload, "base64url").toString("utf8")) as Record<string, unknown>;
    return typeof claims[tenantClaim] === "string" && typeof claims.sid === "string" ? { tenant: claims[tenantClaim], session: claims.sid } : null;
  } catch {
    return null;
  }
}

export function classify(
  method: string,
  path: string,
  headers: Record<string, string | string[] | undefined>,
  body: Buffer,
  tools: ReadonlyMap<string, ToolInfo>,
  byContract: ReadonlyMap<string, ToolInfo>,
  tenantClaim: string,
): RunRequest | null {
  if (method !== "POST" || (path !== "/mcp" && path !== "/v1/tasks")) return null;
  const who = caller(typeof headers.authorization === "string" ? headers.authorization : undefined, tenantClaim);
  if (!who) return null;
  let json: unknown;
  try {
    json = JSON.parse(body.toString("utf8"));
  } catch {
    return null;
  }
  const calls: RunCall[] = [];
  let wallMs = 0;
  if (path === "/v1/tasks") {
    const info = byContract.get(String((json as { contract?: unknown }).contract));
    if (!info) return null;
    calls.push({ jsonrpcId: null, contractId: info.contractId });
    wallMs = info.wallMs;
  } else {
    for (const message of Array.isArray(json) ? json : [json]) {
      const m = message as { method?: unknown; id?: unknown; params?: { name?: unknown } };
      if (m?.method !== "tools/call") continue;
      const info = tools.get(String(m.params?.name));
      if (!info) continue;
      calls.push({ jsonrpcId: typeof m.id === "string" || typeof m.id === "number" ? m.id : null, contractId: info.contractId });
      wallMs = Math.max(wallMs, info.wallMs);
    }
    if (calls.length === 0) return null;
  }
  const receivedAt = Date.now();
  return { kind: path === "/mcp" ? "mcp" : "tasks", ...who, calls, receivedAt, deadlineAt: receivedAt + wallMs + DEADLINE_GRACE_MS };
}

type Envelope = {
  runId: string;
  termination: string;
  policyHash: string;
  decision: ClosedRun["decision"];
  logs: [];
  logsTruncated: false;
  error: { code: string; message: string; hint: string };
};

function envelopeOf(run: ClosedRun): Envelope {
  return {
    runId: run.runId,
    termination: run.termination,
    policyHash: run.policyHash,
    decision: run.decision && { outcome: run.decision.outcome, reasons: run.decision.reasons, dataClass: run.decision.dataClass },
    logs: [],
    logsTruncated: false,
    error: { ...run.error, hint: defaultHint(run.error.code as ErrorCode) },
  };
}

/** The answer to a run request whose runtime was lost: each call with the run the ledger closed for it. */
export function lostRunResponse(request: RunRequest, runs: Array<ClosedRun | undefined>, fallback: ErrorCode): { status: number; body: unknown } {
  const lostMessage = (code: ErrorCode) => ({
    code,
    message: "The runtime was lost while this call was in flight; it has no recorded run.",
    hint: defaultHint(code),
  });
  if (request.kind === "tasks") {
    const run = runs[0];
    const body = run ? envelopeOf(run) : { error: lostMessage(fallback) };
    return { status: run?.termination === "timed_out" ? 504 : 503, body };
  }
  const answers = request.calls.map((call, index) => {
    const run = runs[index];
    if (!run) {
      const error = lostMessage(fallback);
      return {
        jsonrpc: "2.0",
        id: call.jsonrpcId,
        result: { resultType: "complete", isError: true, content: [{ type: "text", text: `${error.code}: ${error.message}\nhint: ${error.hint}` }] },
      };
    }
    const envelope = envelopeOf(run);
    const text = `${envelope.error.code}: ${envelope.error.message}\nhint: ${envelope.error.hint}\nrun: ${envelope.runId}`;
    // resultType: 2026-07-28 clients require it; earlier clients ignore it.
    return {
      jsonrpc: "2.0",
      id: call.jsonrpcId,
      result: { resultType: "complete", isError: true, content: [{ type: "text", text }], structuredContent: envelope },
    };
  });
  return { status: 200, body: answers.length === 1 ? answers[0] : answers };
}
