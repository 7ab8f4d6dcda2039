// An OpenAPI 3 document (JSON) as the source of an http connector: the conversion itself, with
// no file or process access (npm run connectors:openapi, src/local/openapi-connector.ts, is the
// command around it). Effects are judged conservatively; a person reviews the file.
import { EFFECTS, type Effect } from "../contracts/connector-schema.ts";
import { formatProblems, loadConnectors } from "../contracts/index.ts";

export type Json = Record<string, unknown>;
const METHODS = ["get", "post", "put", "patch", "delete"] as const;

export type OpenApiOptions = { name: string; description?: string; baseUrl?: string; only?: string[] };
export type OpenApiResult = { connector: Json; skipped: string[] };

/** A local `$ref` (#/components/...) resolved, at most 8 deep; anything else stays as it is. */
function resolveRefs(document: Json, value: unknown, depth = 0): unknown {
  if (Array.isArray(value)) return value.map((item) => resolveRefs(document, item, depth));
  if (!value || typeof value !== "object") return value;
  const node = value as Json;
  if (typeof node.$ref === "string") {
    if (depth >= 8 || !node.$ref.startsWith("#/")) return {};
    const target = node.$ref
      .slice(2)
      .split("/")
      .reduce<unknown>((at, step) => (at && typeof at === "object" ? (at as Json)[step.replaceAll("~1", "/").replaceAll("~0", "~")] : undefined), document);
    return resolveRefs(document, target, depth + 1);
  }
  return Object.fromEntries(Object.entries(node).map(([key, child]) => [key, resolveRefs(document, child, depth)]));
}

/** `list-issues`, `list_issues`, `ListIssues` -> `listIssues`. */
export function operationName(operationId: string): string {
  const words = operationId.split(/[^A-Za-z0-9]+/).filter(Boolean);
  const joined = words.map((word, i) => (i === 0 ? word.charAt(0).toLowerCase() + word.slice(1) : word.charAt(0).toUpperCase() + word.slice(1))).join("");
  return /^[a-z]/.test(joined) ? joined.slice(0, 64) : `op${joined}`.slice(0, 64);
}

function effectOf(method: string, operation: Json): Effect {
  const declared = operation["x-agent-exec-effect"];
  if (typeof declared === "string" && (EFFECTS as readonly string[]).includes(declared)) return declared as Effect;
  if (method === "get") return "read";
  if (method === "delete") return "privileged";
  return "mutate";
}

export function connectorFromOpenApi(document: Json, options: OpenApiOptions): OpenApiResult {
  if (typeof document.openapi !== "string" || !document.openapi.startsWith("3.")) throw new Error("not an OpenAPI 3 document (no openapi: 3.x)");
  const servers = Array.isArray(document.servers) ? (document.servers as Json[]) : [];
  const server = typeof servers[0]?.url === "string" ? (servers[0].url as string) : undefined;
  const baseUrl = options.baseUrl ?? server;
  if (!baseUrl || !/^https?:\/\//.test(baseUrl)) throw new Error("no absolute base URL: give --base-url (the document's first server has none)");
  const info = (document.info ?? {}) as Json;
  const operations: Record<string, Json> = {};
  const skipped: string[] = [];
  for (const [path, item] of Object.entries((document.paths ?? {}) as Record<string, Json>)) {
    const shared = Array.isArray(item.parameters) ? (item.parameters as unknown[]) : [];
    for (const method of METHODS) {
      const operation = item[method] as Json | undefined;
      if (!operation) continue;
      const id = typeof operation.operationId === "string" ? operation.operationId : `${method} ${path}`;
      if (typeof operation.operationId !== "string") {
        skipped.push(`${method.toUpperCase()} ${path}: no operationId`);
        continue;
      }
      if (options.only && !options.only.includes(id)) continue;
      const properties: Record<string, unknown> = {};
      const required: string[] = [];
      const query: string[] = [];
      const parameters = [...shared, ...(Array.isArray(operation.parameters) ? (operation.parameters as unknown[]) : [])].map(
        (parameter) => resolveRefs(document, parameter) as Json,
      );
      let unsupported = "";
      for (const parameter of parameters) {
        const name = String(parameter.name ?? "");
        if (parameter.in === "path" || parameter.in === "query") {
          properties[name] = {
            ...((parameter.schema as Json | undefined) ?? { type: "string" }),
            ...(parameter.description ? { description: parameter.description } : {}),
          };
          if (parameter.in === "query") query.push(name);
          if (parameter.in === "path" || parameter.required === true) required.push(name);
        } else if (parameter.required === true) unsupported = `a required ${String(parameter.in)} parameter (${name})`;
      }
      const body = resolveRefs(document, ((operation.requestBody as Json | undefined)?.content as Json | undefined)?.["application/json"]) as Json | undefined;
      const bodySchema = body?.schema as Json | undefined;
      if (bodySchema) {
        if (bodySchema.type !== "object" || !bodySchema.properties) unsupported = "a JSON body that is not an object with properties";
        else {
          Object.assign(properties, bodySchema.properties as Json);
          if (Array.isArray(bodySchema.required)) required.push(...(bodySchema.required as string[]));
        }
      }
      if (unsupported) {
        skipped.push(`${id}: ${unsupported}`);
        continue;
      }
      const responses = (operation.responses ?? {}) as Record<string, Json>;
      const answer = resolveRefs(document, ((responses["200"] ?? responses["201"])?.content as Json | undefined)?.["application/json"]) as Json | undefined;
      const name = operationName(id);
      if (operations[name]) {
        skipped.push(`${id}: its name ${name} is taken`);
        continue;
      }
      operations[name] = {
        description: String(operation.summary ?? operation.description ?? id).slice(0, 1_000),
        effect: effectOf(method, operation),
        method: method.toUpperCase(),
        path: path.replace(/^\//, ""),
        ...(query.length > 0 ? { query } : {}),
        arguments: { type: "object", properties, ...(required.length > 0 ? { required: [...new Set(required)] } : {}), additionalProperties: false },
        ...(answer?.schema ? { result: answer.schema } : {}),
      };
    }
  }
  const connector = {
    $schema: "./connector.schema.json",
    name: options.name,
    description: (options.description ?? String(info.title ?? options.name)).slice(0, 1_000),
    kind: "http",
    baseUrl: baseUrl.endsWith("/") ? baseUrl : `${baseUrl}/`,
    operations,
  };
  const checked = loadConnectors([{ file: `${options.name}.json`, json: connector }]);
  if (!checked.ok) throw new Error(`the connector made from this document is not valid:\n${formatProblems(checked.problems)}`);
  return { connector, skipped };
}
