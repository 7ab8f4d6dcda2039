// `npm run seed -- [--tenant acme] [--file examples/seed/acme.json] [--url http://127.0.0.1:8787]`
// loads documents, logs and metrics into a tenant's store (what env.DOCS reads), with a
// token carrying the store_admin role signed by the local development key.
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { ensureDevKey, ROOT } from "./dev-keys.ts";
import { localAuthSettings, mintToken } from "./mint-token.ts";

const { values } = parseArgs({
  options: {
    tenant: { type: "string", default: "acme" },
    file: { type: "string" },
    url: { type: "string", default: `http://127.0.0.1:${process.env.PORT ?? 8787}` },
  },
});
const file = values.file ?? join(ROOT, "examples/seed", `${values.tenant}.json`);
const { token } = await mintToken({
  key: await ensureDevKey(),
  ...(await localAuthSettings()),
  tenant: values.tenant,
  actor: "seed-script",
  roles: ["store_admin"],
  ttlSeconds: 300,
});
const response = await fetch(`${values.url}/v1/store/items`, {
  method: "POST",
  headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
  body: readFileSync(file, "utf8"),
});
const body = await response.text();
if (!response.ok) {
  process.stderr.write(`seeding failed: HTTP ${response.status} ${body}\n`);
  process.exit(1);
}
process.stdout.write(`${body}\n`);
