// `npm run connectors:openapi -- <openapi.json> --name <name> [--base-url URL] [--only id,id] [--out FILE]`
// writes an `http` connector file from an OpenAPI 3 document (JSON): one operation per
// operationId (lower camel case), its method and path, its path and query parameters and
// JSON request body as one arguments schema, its 200/201 JSON response as the result. Each
// operation's effect is the document's `x-agent-exec-effect` where it says, else GET/HEAD
// read, DELETE privileged, anything else mutate: a person reviews the file (and the effects)
// before a contract grants any of it. The file is checked as `npm start` checks it.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { EFFECTS, type Effect } from "../contracts/connector-schema.ts";
import { formatProblems, loadConnectors } from "../contracts/index.ts";
import { CONNECTORS_DIR } from "./build-catalog.ts";

type Json = Record<string, unknown>;
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

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      name: { type: "string" },
      description: { type: "string" },
      "base-url": { type: "string" },
      only: { type: "string" },
      out: { type: "string" },
      force: { type: "boolean" },
    },
  });
  const [source] = positionals;
  if (!source || !values.name) {
    console.error("usage: npm run connectors:openapi -- <openapi.json> --name <name> [--base-url URL] [--only opId,opId] [--out FILE] [--force]");
    process.exit(2);
  }
  try {
    const document = JSON.parse(readFileSync(source, "utf8")) as Json;
    const { connector, skipped } = connectorFromOpenApi(document, {
      name: values.name,
      ...(values.description ? { description: values.description } : {}),
      ...(values["base-url"] ? { baseUrl: values["base-url"] } : {}),
      ...(values.only ? { only: values.only.split(",") } : {}),
    });
    const out = values.out ?? join(CONNECTORS_DIR, `${values.name}.json`);
    if (existsSync(out) && !values.force) throw new Error(`${out} exists: review it, or give --force to replace it`);
    writeFileSync(out, `${JSON.stringify(connector, null, 2)}\n`);
    const operations = Object.entries(connector.operations as Record<string, { effect: string; method: string; path: string }>);
    console.log(`${out}: ${operations.length} operations; review each effect before a contract grants it:`);
    for (const [name, operation] of operations) console.log(`  ${name.padEnd(28)} ${operation.effect.padEnd(10)} ${operation.method} ${operation.path}`);
    for (const reason of skipped) console.log(`  skipped: ${reason}`);
  } catch (error) {
    console.error(`connectors:openapi: ${error instanceof Error ? error.message : String(error)}`);
    process.exit(2);
  }
}
