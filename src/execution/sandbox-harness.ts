// The main module of every dynamic worker. `warm()` boots the isolate (the loader
// parses every module, but only this one is evaluated); `run()` imports the caller's
// module (`task.js`), captures console output within the log cap, calls the default
// export with (input, ctx) and answers with JSON text. Nothing it says is trusted:
// the host re-validates every answer (see run-in-sandbox.ts).
//
// Plain JavaScript in a string because it runs in the sandbox, not in this Worker.

export const HARNESS_MODULE = "harness.js";
export const TASK_MODULE = "task.js";

export const SANDBOX_HARNESS_SOURCE = `
import { WorkerEntrypoint } from "cloudflare:workers";

// Captured before the task module can patch the globals the harness relies on.
const stringify = JSON.stringify;
const rawFetch = globalThis.fetch.bind(globalThis);

// workerd drops userinfo from a URL before it reaches the egress gateway (so it never
// leaves); mark the request instead, so the gateway denies it and the attempt is recorded.
// Installed on the global and on its prototype, neither writable nor configurable, so the
// task cannot reach the unmarked fetch through Object.getPrototypeOf(globalThis).
const markedFetch = (input, init) => {
  let target;
  try {
    target = new URL(typeof input === "string" || input instanceof URL ? String(input) : input.url);
  } catch {
    return rawFetch(input, init);
  }
  if (!target.username && !target.password) return rawFetch(input, init);
  target.username = "";
  target.password = "";
  const headers = new Headers(init?.headers ?? (input instanceof Request ? input.headers : undefined));
  headers.set("x-agent-exec-userinfo", "present");
  return rawFetch(target, { ...init, headers });
};
for (let scope = globalThis; scope && scope !== Object.prototype; scope = Object.getPrototypeOf(scope)) {
  if (Object.prototype.hasOwnProperty.call(scope, "fetch")) {
    Object.defineProperty(scope, "fetch", { value: markedFetch, writable: false, configurable: false, enumerable: true });
  }
}
Object.defineProperty(globalThis, "fetch", { value: markedFetch, writable: false, configurable: false, enumerable: true });
const encoder = new TextEncoder();
const byteLength = (text) => encoder.encode(text).byteLength;
const levels = ["log", "info", "warn", "error", "debug"];

function describe(value) {
  if (typeof value === "string") return value;
  if (value instanceof Error) return value.stack || String(value);
  try {
    const text = stringify(value);
    return text === undefined ? String(value) : text;
  } catch {
    return String(value);
  }
}

function captureConsole(limitBytes) {
  const state = { lines: [], bytes: 0, truncated: false };
  for (const level of levels) {
    console[level] = (...args) => {
      if (state.truncated) return;
      const message = args.map(describe).join(" ");
      const size = byteLength(message);
      if (state.bytes + size > limitBytes) {
        state.truncated = true;
        return;
      }
      state.bytes += size;
      state.lines.push({ level, message });
    };
  }
  return state;
}

function failure(code, error, startedAt, logs) {
  const message = error instanceof Error ? error.name + ": " + error.message : describe(error);
  const stack = error instanceof Error && typeof error.stack === "string" ? error.stack.slice(0, 4000) : undefined;
  return { status: "error", code, message: message.slice(0, 2000), stack, startedAt, ...logs };
}

export default class SandboxHarness extends WorkerEntrypoint {
  // Boots the isolate without touching the task module: only the harness is evaluated.
  async warm() {
    return { startedAt: Date.now() };
  }

  async run(request) {
    const startedAt = Date.now();
    const state = captureConsole(request.limits.logBytes);
    const logs = () => ({ logs: state.lines, logBytes: state.bytes, logsTruncated: state.truncated });

    let task;
    try {
      task = await import("./task.js");
    } catch (error) {
      return failure(error instanceof SyntaxError ? "code_syntax_error" : "code_threw", error, startedAt, logs());
    }
    if (typeof task.default !== "function") {
      return failure("invalid_module", new TypeError("the module has no default export function"), startedAt, logs());
    }

    const ctx = Object.freeze({ runId: request.runId, contract: Object.freeze(request.contract), env: this.env });
    let result;
    try {
      result = await task.default(request.input, ctx);
    } catch (error) {
      return failure("code_threw", error, startedAt, logs());
    }

    let resultJson;
    try {
      resultJson = stringify(result);
    } catch (error) {
      return failure("result_not_serializable", error, startedAt, logs());
    }
    if (resultJson === undefined) {
      if (result === undefined) resultJson = "null";
      else return failure("result_not_serializable", new TypeError("a " + typeof result + " is not JSON"), startedAt, logs());
    }
    const resultBytes = byteLength(resultJson);
    if (resultBytes > request.limits.outputBytes) {
      return { status: "too_large", resultBytes, startedAt, ...logs() };
    }
    return { status: "ok", resultJson, startedAt, ...logs() };
  }
}
`;
