// The one error type the platform raises. Each code has a fixed HTTP status and
// a default hint, so callers can `switch (err.code)` and clients get a stable code.

const ERRORS = {
  unauthorized: { status: 401, hint: "Send `Authorization: Bearer <token>`; locally, mint one with `npm run token -- --tenant <t> --actor <a>`." },
  invalid_token: { status: 401, hint: "Mint a fresh token for this server's issuer and audience (`npm run token`)." },
  auth_unavailable: { status: 503, hint: "The token keys could not be fetched from the identity provider; retry shortly." },
  misconfigured: { status: 503, hint: "The operator must fix the server configuration named in the message (see docs/configuration.md)." },
  forbidden: { status: 403, hint: "This route needs a role or credential the token does not carry; the message says which." },
  conflict: { status: 409, hint: "The resource is not in the state this request needs; read it again." },
  not_found: { status: 404, hint: "Check the path; evidence is only visible to the session's own tenant." },
  bad_request: { status: 400, hint: "Fix the request as the message says and retry." },
  method_not_allowed: { status: 405, hint: "Use the HTTP method the route documents." },
  invalid_arguments: { status: 400, hint: "Send `code` (an ES module source string) and an optional `input` that matches the tool's input schema." },
  policy_denied: { status: 403, hint: "The tenant's policy does not allow this call; the reasons say which grant is missing." },
  policy_unavailable: { status: 503, hint: "The policy snapshot could not be archived, so nothing ran; retry shortly." },
  task_rejected: { status: 403, hint: "The signed task failed verification; nothing ran. Sign a fresh task for exactly this code and input." },
  approval_required: { status: 403, hint: "This contract runs only with a human approval bound to the exact task." },
  phase_rolled_back: {
    status: 403,
    hint: "This contract's rollout phase was rolled back for your tenant by a rollback condition; an operator re-enables it with POST /v1/rollout/{phase}/enable.",
  },
  approval_rejected: { status: 403, hint: "A human rejected this exact task; read the reason, change the task, and call again to ask for a new approval." },
  code_syntax_error: { status: 422, hint: "The module failed to parse or load; fix the syntax and send it again." },
  invalid_module: { status: 422, hint: "Export a function as default: `export default async (input, ctx) => result`." },
  code_threw: { status: 422, hint: "The code threw; read the message and the captured console output, fix it and retry." },
  code_hung: { status: 422, hint: "The code awaited a promise that can never settle (nothing was pending); make sure every promise resolves." },
  result_not_serializable: {
    status: 422,
    hint: "Return plain JSON data (objects, arrays, strings, finite numbers, booleans, null); no BigInt, functions or cycles.",
  },
  output_too_large: { status: 413, hint: "Return less data (summarise, paginate), or use a contract with a larger output cap." },
  timed_out: { status: 504, hint: "The run exceeded its wall-clock deadline; make it do less work per call." },
  memory_exceeded: {
    status: 422,
    hint: "The run used more memory than its sandbox has; hold less at once (stream, paginate, summarise) and call again.",
  },
  runtime_restarted: { status: 503, hint: "The local runtime was restarted while this ran (another run overran it); nothing of this run continued. Retry." },
  runtime_crashed: {
    status: 503,
    hint: "The local runtime crashed while this ran (e.g. a run exhausted memory); nothing of this run continued. Retry; if it was this run, make it use less memory.",
  },
  data_invalid: {
    status: 503,
    hint: "An operator must fix the contract or policy file the message names; until then every request is refused, not held. Send it again once the file is fixed.",
  },
  sandbox_unavailable: { status: 503, hint: "The sandbox could not be started; retry shortly." },
  sandbox_protocol_error: { status: 502, hint: "The sandbox answered in an unexpected shape; the run is recorded as failed." },
  export_too_large: {
    status: 413,
    hint: "One bundle carries at most 20,000 records: export the session as ranges (?from=1&to=20000, then from=20001, …; each answer's Link header names the next) and verify them together with npm run verify -- a.json b.json ….",
  },
  evidence_broken: {
    status: 500,
    hint: "The session's stored evidence does not verify from the named record on (its storage was altered or damaged), so the export was refused rather than signed. Keep the session as it is and report it; earlier ranges still export.",
  },
  over_budget: {
    status: 429,
    hint: "The tenant's concurrency budget for this lane is full; retry after retryAfterMs (or ask the operator for a larger budget).",
  },
  budget_unavailable: { status: 503, hint: "The tenant's budget could not be consulted, so nothing ran; retry shortly." },
  evidence_unavailable: { status: 503, hint: "Evidence could not be recorded, so nothing ran; retry shortly." },
  internal_error: { status: 500, hint: "An unexpected server error; the run id identifies it in the evidence." },
} as const satisfies Record<string, { status: number; hint: string }>;

export type ErrorCode = keyof typeof ERRORS;

export const ERROR_CODES = Object.keys(ERRORS) as ErrorCode[];

/** A failure a client may see: stable `code`, HTTP `status`, human `message`, actionable `hint`. */
export class PlatformError extends Error {
  override readonly name = "PlatformError";
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string;
  /** When retrying can succeed, and no sooner (over_budget). */
  readonly retryAfterMs: number | undefined;
  /** For a refusal by role: the roles (any one of them) the token lacks, sent as an insufficient_scope challenge. */
  readonly scope: readonly string[] | undefined;

  constructor(code: ErrorCode, message: string, options: { hint?: string; cause?: unknown; retryAfterMs?: number; scope?: readonly string[] } = {}) {
    super(message, { cause: options.cause });
    this.code = code;
    this.status = ERRORS[code].status;
    this.hint = options.hint ?? ERRORS[code].hint;
    this.retryAfterMs = options.retryAfterMs;
    this.scope = options.scope;
  }

  /** The shape sent over the wire: never the cause, never a stack. */
  toJSON(): ErrorBody {
    return { code: this.code, message: this.message, hint: this.hint, ...(this.retryAfterMs === undefined ? {} : { retryAfterMs: this.retryAfterMs }) };
  }
}

export type ErrorBody = { code: ErrorCode; message: string; hint: string; retryAfterMs?: number };

/** Wraps anything thrown by foreign code into an `internal_error`, keeping it as `cause`. */
export function asPlatformError(error: unknown): PlatformError {
  if (error instanceof PlatformError) return error;
  return new PlatformError("internal_error", "Unexpected server error.", { cause: error });
}

export function defaultHint(code: ErrorCode): string {
  return ERRORS[code].hint;
}
