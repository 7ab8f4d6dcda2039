// `npm run connectors:openapi -- <openapi.json> --name <name> [--base-url URL] [--only id,id] [--out FILE]`
// writes an `http` connector file from an OpenAPI 3 document (JSON): one operation per
// operationId (lower camel case), its method and path, its path and query parameters and
// JSON request body as one arguments schema, its 200/201 JSON response as the result. Each
// operation's effect is the document's `x-agent-exec-effect` where it says, else GET
// read, DELETE privileged, anything else mutate: a person reviews the file (and the effects)
// before a contract grants any of it. The file is checked as `npm start` checks it.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { CONNECTORS_DIR } from "./build-catalog.ts";
import { connectorFromOpenApi, type Json } from "./openapi-source.ts";

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
