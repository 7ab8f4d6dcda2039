// An http connector's operation: the request built inside the connector's base URL from the
// path template, query names and JSON body, sent through the egress gateway as the connector.

import { connectorVia, type HttpOperation, pathParameters } from "../contracts/index.ts";
import { utf8Bytes } from "../evidence/index.ts";
import { capabilityError } from "./capability-error.ts";
import { type BindingContext, cappedText, OPERATION_RESULT_MAX_BYTES, type Outcome } from "./connector-answer.ts";

/** Builds the request inside the connector's base URL, sends it through the gateway, reads a capped answer. */
export async function sendHttp(
  ctx: BindingContext,
  baseUrl: string,
  name: string,
  operation: HttpOperation,
  args: unknown,
  outcome: Outcome,
  approve: () => Promise<void>,
): Promise<unknown> {
  const { connector } = ctx.props;
  const values = args as Record<string, unknown>;
  const inPath = new Set(pathParameters(operation.path));
  const path = operation.path.replace(/\{([A-Za-z][A-Za-z0-9_]*)\}/g, (_, key: string) => {
    const value = String(values[key]);
    // encodeURIComponent keeps "." and "..", which the URL would resolve: a path value is one segment, never a step
    if (value === "" || value === "." || value === "..")
      throw capabilityError("invalid_request", `${connector.name}.${name}: ${key} must not be empty, "." or ".."`);
    return encodeURIComponent(value);
  });
  const base = new URL(baseUrl);
  const url = new URL(path, base);
  if (url.origin !== base.origin || !url.pathname.startsWith(base.pathname)) {
    throw capabilityError("invalid_request", `${connector.name}.${name}: the arguments lead outside ${baseUrl}`);
  }
  const body: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(values)) {
    if (inPath.has(key)) continue;
    if (operation.query.includes(key)) {
      if (value !== undefined && value !== null) url.searchParams.set(key, typeof value === "string" ? value : JSON.stringify(value));
    } else body[key] = value;
  }
  const sendsBody = operation.method !== "GET" && operation.method !== "DELETE";
  const gateway = ctx.exports.EgressGateway({ props: { ...ctx.props, via: connectorVia(connector.name) } });
  await approve();
  outcome.sent = true;
  const response = await gateway.fetch(url, {
    method: operation.method,
    headers: { accept: "application/json", ...(sendsBody ? { "content-type": "application/json" } : {}) },
    ...(sendsBody ? { body: JSON.stringify(body) } : {}),
  });
  outcome.status = response.status;
  const denied = response.headers.get("x-egress-denied");
  if (denied) {
    outcome.sent = false;
    await response.body?.cancel();
    throw capabilityError("egress_denied", `${connector.name} at ${url.origin} is not reachable under this contract (${denied})`);
  }
  const text = await cappedText(response);
  outcome.bytes = text === null ? OPERATION_RESULT_MAX_BYTES + 1 : utf8Bytes(text);
  if (text === null) throw capabilityError("result_too_large", `${connector.name}.${name} answered more than ${OPERATION_RESULT_MAX_BYTES} bytes`);
  if (!response.ok) throw capabilityError("upstream_failed", `${connector.name}.${name}: the API answered ${response.status}`);
  if (text === "") return null;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
