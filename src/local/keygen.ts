// `npm run keygen -- [--alg EdDSA|ES256]`: prints a new private signing JWK with a
// thumbprint kid, for `wrangler secret put TASK_SIGNING_KEY` (or a planner's own key).
// The public half goes to stderr: publish it (TASK_PLANNERS, a previous-keys list).
import { parseArgs } from "node:util";
import { newKeyPair } from "./dev-keys.ts";

const { values } = parseArgs({ options: { alg: { type: "string", default: "EdDSA" } } });
if (values.alg !== "EdDSA" && values.alg !== "ES256") {
  process.stderr.write("--alg must be EdDSA or ES256\n");
  process.exit(2);
}
const key = await newKeyPair(values.alg);
process.stdout.write(`${JSON.stringify(key.privateJwk)}\n`);
process.stderr.write(`public: ${JSON.stringify(key.publicJwk)}\n`);
