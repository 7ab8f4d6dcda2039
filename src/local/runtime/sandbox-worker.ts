// A sandbox runtime process's entry under `npm start`: the SandboxHost with what it builds
// dynamic workers from (the egress gateway, the capability bindings), and a health route the
// supervisor's watchdog probes. A runaway stalls this process only; the main runtime, with
// the routes, the Durable Objects and the evidence, keeps answering.
export { DocsCapability } from "../../execution/capability-docs.ts";
export { TrackerCapability } from "../../execution/capability-tracker.ts";
export { EgressGateway } from "../../execution/egress-gateway.ts";
export { SandboxHost } from "../../execution/sandbox-host.ts";

/** Answered only while this process's thread is free: a blocked sandbox does not answer it. */
export default {
  fetch(): Response {
    return new Response("sandbox runtime up\n", { headers: { "content-type": "text/plain" } });
  },
} satisfies ExportedHandler;
