// A sandbox runtime process's entry under `npm start`: the SandboxHost with what it builds
// dynamic workers from (the egress gateway, the capability bindings), and a health route the
// supervisor's watchdog probes. A runaway stalls this process only; the main runtime, with
// the routes, the Durable Objects and the evidence, keeps answering.
export { ConnectorBinding } from "../../execution/capability-connector.ts";
export { DocsCapability } from "../../execution/capability-docs.ts";
export { TrackerCapability } from "../../execution/capability-tracker.ts";
export { EgressGateway } from "../../execution/egress-gateway.ts";

import type { SandboxJobWire } from "../../execution/index.ts";
import { SandboxHost as Host, type SandboxRun } from "../../execution/sandbox-host.ts";

/**
 * The SandboxHost, taking jobs only from its own server's main runtime: the dev registry
 * reaches this process through workerd's debug port on loopback, which anyone on the machine
 * can connect to, so each job carries the token of this start (from the private .dev.vars).
 */
export class SandboxHost extends Host {
  override start(job: SandboxJobWire & { localToken?: unknown }): SandboxRun {
    const expected = (this.env as { LOCAL_SANDBOX_TOKEN?: string }).LOCAL_SANDBOX_TOKEN ?? "";
    const presented = typeof job.localToken === "string" ? job.localToken : "";
    const encode = (text: string) => new TextEncoder().encode(text);
    if (expected === "" || presented.length !== expected.length || !crypto.subtle.timingSafeEqual(encode(presented), encode(expected))) {
      throw new Error("This sandbox host runs the jobs of its own server's main runtime only.");
    }
    const { localToken: _token, ...rest } = job;
    return super.start(rest);
  }
}

/** Answered only while this process's thread is free: a blocked sandbox does not answer it. */
export default {
  fetch(): Response {
    return new Response("sandbox runtime up\n", { headers: { "content-type": "text/plain" } });
  },
} satisfies ExportedHandler;
