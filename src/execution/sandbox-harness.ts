// The main module of every dynamic worker. `warm()` boots the isolate (the loader
// parses every module, but only this one is evaluated); `run()` imports the caller's
// module (`task.js`), captures console output within the log cap, calls the default
// export with (input, ctx) and answers with JSON text. Nothing it says is trusted:
// the host re-validates every answer (see run-in-sandbox.ts).
//
// Plain JavaScript in a string because it runs in the sandbox, not in this Worker.

export const HARNESS_MODULE = "harness.js";
export const TASK_MODULE = "task.js";
/** The module name the sockets shim takes: in a dynamic worker a module of this name stands in for the runtime's own. */
export const SOCKETS_MODULE = "cloudflare:sockets";
/** The env name of the binding the shim opens sockets through (the run's egress gateway); never in the task's ctx.env. */
export const SOCKETS_BINDING = "AGENT_EXEC_SOCKETS";
/** The env names connector bindings take (the prefix, then the connector's name); the task sees ctx.env.<name> with one method per operation instead. */
export const CONNECTOR_BINDING_PREFIX = "AGENT_EXEC_CONNECTOR_";

/**
 * \`cloudflare:sockets\` as the sandbox sees it. The runtime's own connect() hands a socket
 * to the egress gateway only after resolving its \`opened\` (so a denied socket looked open);
 * this one asks the gateway first (RPC, with the code's outgoing bytes as a stream) and
 * resolves \`opened\` only when the gateway allowed the destination and reached it. A denied
 * or unreachable socket's \`opened\` and \`closed\` reject, its reads fail and its writes fail.
 * Shadowing the built-in leaves the task no other way to open a socket.
 */
export const SOCKETS_SHIM_SOURCE = `
let open = null;

/** Set once, by the harness, before the task is imported. */
export function installSocketOpener(opener) {
  if (open === null) open = opener;
}

function addressOf(address) {
  if (typeof address === "string") return address;
  const host = String(address?.hostname ?? "");
  return (host.includes(":") && !host.startsWith("[") ? "[" + host + "]" : host) + ":" + Number(address?.port);
}

export function connect(address, options = {}) {
  if (open === null) throw new Error("sockets are not available in this sandbox");
  const target = addressOf(address);
  const secureTransport = options.secureTransport ?? "off";
  if (secureTransport === "starttls") throw new TypeError("secureTransport: 'starttls' is not available in this sandbox; use 'on' or 'off'");
  const outgoing = new TransformStream();
  const incoming = new TransformStream();
  let settle;
  const closed = new Promise((resolve, reject) => { settle = { resolve, reject }; });
  const opened = (async () => {
    let answer;
    try {
      answer = await open(target, { secureTransport, allowHalfOpen: options.allowHalfOpen === true }, outgoing.readable);
    } catch (error) {
      answer = { ok: false, reason: "gateway_unreachable", detail: String(error) };
    }
    if (!answer.ok) {
      const error = new Error("connect to " + target + " refused by the egress gateway: " + answer.reason);
      incoming.writable.abort(error).catch(() => {});
      outgoing.writable.abort(error).catch(() => {});
      settle.reject(error);
      throw error;
    }
    answer.readable.pipeTo(incoming.writable).then(() => settle.resolve(), (error) => settle.reject(error));
    return { remoteAddress: answer.remoteAddress };
  })();
  opened.catch(() => {});
  closed.catch(() => {});
  return {
    readable: incoming.readable,
    writable: outgoing.writable,
    opened,
    closed,
    upgraded: false,
    secureTransport,
    async close() {
      await outgoing.writable.close().catch(() => {});
      await incoming.readable.cancel().catch(() => {});
      settle.resolve();
      return closed.catch(() => {});
    },
    startTls() {
      throw new TypeError("startTls is not available in this sandbox; connect with secureTransport: 'on'");
    },
  };
}
`;

export const SANDBOX_HARNESS_SOURCE = `
import { WorkerEntrypoint } from "cloudflare:workers";
import { installSocketOpener } from "${SOCKETS_MODULE}";

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

    // sockets open through the run's gateway, from the task's first line on
    const { ${SOCKETS_BINDING}: sockets, ...bindings } = this.env;
    if (sockets) installSocketOpener((target, options, outgoing) => sockets.openSocket(target, options, outgoing));
    // each connector: one method per operation the run may call, and call(name, args) for any name (the binding decides)
    const env = {};
    for (const [name, binding] of Object.entries(bindings)) {
      if (!name.startsWith("${CONNECTOR_BINDING_PREFIX}")) env[name] = binding;
    }
    for (const [name, operations] of Object.entries(request.connectors ?? {})) {
      const binding = bindings["${CONNECTOR_BINDING_PREFIX}" + name];
      if (!binding) continue;
      const api = {};
      for (const operation of operations) api[operation] = (args) => binding.invoke(operation, args ?? {});
      Object.defineProperty(api, "call", { value: (operation, args) => binding.invoke(operation, args ?? {}) });
      Object.defineProperty(api, "describe", { value: (names) => binding.describe(names) });
      env[name] = Object.freeze(api);
    }

    let task;
    try {
      task = await import("./task.js");
    } catch (error) {
      return failure(error instanceof SyntaxError ? "code_syntax_error" : "code_threw", error, startedAt, logs());
    }
    if (typeof task.default !== "function") {
      return failure("invalid_module", new TypeError("the module has no default export function"), startedAt, logs());
    }

    const ctx = Object.freeze({ runId: request.runId, contract: Object.freeze(request.contract), env: Object.freeze(env) });
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
