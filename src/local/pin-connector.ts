// `npm run connectors:pin -- <name | file> [--bearer-env NAME]` fetches an MCP connector's
// upstream tool list (every page of tools/list, with the MCP SDK's client) and writes it into
// the connector file as `pinned`: the tools as the upstream describes them and their SHA-256.
// The pin is what a person reviews (a diff in the file) and what runs are checked against:
// once it changes, the next policy snapshot carries it. Prints what changed since the last
// pin. EGRESS_RESOLVE is honoured, as npm start honours it.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { type PinnedTool, PinnedToolSchema, pinnedTool, toolListSha256 } from "../contracts/connector-schema.ts";
import { CONNECTORS_DIR } from "./build-catalog.ts";

export type PinResult = { file: string; sha256: string; tools: number; added: string[]; removed: string[]; changed: string[]; unchanged: boolean };

/** The file a name or path means: a path as given, else `<CONNECTORS_DIR>/<name>.json`. */
export function connectorFile(nameOrFile: string, dir = CONNECTORS_DIR): string {
  return nameOrFile.endsWith(".json") ? resolve(nameOrFile) : join(dir, `${nameOrFile}.json`);
}

/** Where a URL really goes under EGRESS_RESOLVE (host -> origin), as the egress gateway sends it locally. */
function resolved(url: URL, resolveMap: Record<string, string>): URL {
  const target = resolveMap[url.hostname];
  if (!target) return url;
  const origin = new URL(target);
  return new URL(`${url.pathname}${url.search}`, origin);
}

export async function pinConnector(file: string, options: { bearer?: string; resolveMap?: Record<string, string> } = {}): Promise<PinResult> {
  if (!existsSync(file)) throw new Error(`${file}: no such connector file`);
  const connector = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>;
  if (connector.kind !== "mcp" || typeof connector.url !== "string")
    throw new Error(`${file}: only an MCP connector (kind "mcp", with a url) has a tool list to pin`);
  const url = resolved(new URL(connector.url), options.resolveMap ?? {});
  const client = new Client({ name: "agent-exec-pin", version: "1.0.0" });
  const headers: Record<string, string> = options.bearer ? { authorization: `Bearer ${options.bearer}` } : {};
  await client.connect(new StreamableHTTPClientTransport(url, { requestInit: { headers } }));
  const tools: PinnedTool[] = [];
  try {
    let cursor: string | undefined;
    for (let page = 0; page < 50; page++) {
      const listed = await client.listTools(cursor ? { cursor } : undefined);
      for (const tool of listed.tools) {
        // what the file will be checked against at start: refuse here, naming the tool, rather than write a file that fails to load
        const kept = PinnedToolSchema.safeParse(pinnedTool(tool as Record<string, unknown>));
        if (!kept.success)
          throw new Error(
            `the upstream's tool "${String(tool.name)}" cannot be pinned: ${kept.error.issues.map((issue) => `${issue.path.join(".")}: ${issue.message}`).join("; ")}`,
          );
        tools.push(kept.data);
      }
      cursor = listed.nextCursor;
      if (!cursor) break;
    }
  } finally {
    await client.close();
  }
  tools.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const sha256 = toolListSha256(tools);
  const before = (connector.pinned as { sha256?: string; tools?: PinnedTool[] } | undefined) ?? {};
  const old = new Map((before.tools ?? []).map((tool) => [tool.name, JSON.stringify(tool)]));
  const now = new Map(tools.map((tool) => [tool.name, JSON.stringify(tool)]));
  const result: PinResult = {
    file,
    sha256,
    tools: tools.length,
    added: [...now.keys()].filter((name) => !old.has(name)),
    removed: [...old.keys()].filter((name) => !now.has(name)),
    changed: [...now.keys()].filter((name) => old.has(name) && old.get(name) !== now.get(name)),
    unchanged: before.sha256 === sha256,
  };
  if (!result.unchanged) {
    connector.pinned = { sha256, pinnedAt: new Date().toISOString(), tools };
    writeFileSync(file, `${JSON.stringify(connector, null, 2)}\n`);
  }
  return result;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { "bearer-env": { type: "string" }, help: { type: "boolean" } },
  });
  if (values.help || positionals.length === 0) {
    console.log("usage: npm run connectors:pin -- <connector name | file.json> ... [--bearer-env NAME]");
    console.log("  Fetches each MCP connector's upstream tool list and pins it (tools and SHA-256) in its file.");
    console.log("  --bearer-env NAME: send the value of environment variable NAME as a Bearer token.");
    process.exit(positionals.length === 0 && !values.help ? 2 : 0);
  }
  const bearerEnv = values["bearer-env"];
  const bearer = bearerEnv ? process.env[bearerEnv] : undefined;
  if (bearerEnv && !bearer) {
    console.error(`connectors:pin: environment variable ${bearerEnv} is not set`);
    process.exit(2);
  }
  const resolveMap = process.env.EGRESS_RESOLVE ? (JSON.parse(process.env.EGRESS_RESOLVE) as Record<string, string>) : {};
  for (const name of positionals) {
    try {
      const pinned = await pinConnector(connectorFile(name), { ...(bearer ? { bearer } : {}), resolveMap });
      const changes = [
        pinned.added.length ? `added ${pinned.added.join(", ")}` : "",
        pinned.removed.length ? `removed ${pinned.removed.join(", ")}` : "",
        pinned.changed.length ? `changed ${pinned.changed.join(", ")}` : "",
      ].filter(Boolean);
      console.log(
        `${pinned.file}: ${pinned.unchanged ? "unchanged" : "pinned"} ${pinned.tools} tools, sha256 ${pinned.sha256}${changes.length ? ` (${changes.join("; ")})` : ""}`,
      );
    } catch (error) {
      console.error(`connectors:pin: ${error instanceof Error ? error.message : String(error)}`);
      process.exit(2);
    }
  }
}
