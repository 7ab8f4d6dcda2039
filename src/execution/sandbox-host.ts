// The sandbox host: the entrypoint that owns the Worker Loader, the egress gateway and the
// capability bindings, and runs one job per start(). In production the Worker reaches it
// through ctx.exports (a loopback into its own isolate); locally `npm start` runs it in
// sandbox runtime processes of their own (src/local/), so a runaway stalls only its process.
// Either way the caller holds the run to its deadline from its own side (open-sandbox.ts).
import { RpcTarget, WorkerEntrypoint } from "cloudflare:workers";
import { platformSecrets, readConfig } from "../config/index.ts";
import type { CapabilityName } from "../contracts/index.ts";
import { redactLogsOf } from "../log/index.ts";
import { type Sandbox, type SandboxJobWire, startSandbox } from "./run-in-sandbox.ts";
import type { CapabilityProps, SandboxBindings } from "./runtime-profile.ts";
import { outcomeToWire, type SandboxOutcomeWire } from "./sandbox-outcome.ts";

/** One started job, held by the caller as an RPC stub: boot, then run once. */
export class SandboxRun extends RpcTarget {
  readonly #sandbox: Sandbox;

  constructor(sandbox: Sandbox) {
    super();
    this.#sandbox = sandbox;
  }

  /** Settles when the isolate is up or failed to start (the failure is run()'s answer). */
  async booted(): Promise<void> {
    await this.#sandbox.booted;
  }

  async run(): Promise<SandboxOutcomeWire> {
    return outcomeToWire(await this.#sandbox.run());
  }
}

/** The isolates whose logs already hide the platform's secrets (a sandbox host may run in an isolate of its own). */
const redacting = new WeakSet<object>();

export class SandboxHost extends WorkerEntrypoint<Env> {
  /** Loads the job's isolate and starts booting it; the task's code runs only on run(). */
  start(job: SandboxJobWire): SandboxRun {
    if (!redacting.has(this.env)) {
      // the gateway and the capabilities log errors here; the injected credentials must not show in them
      redactLogsOf(platformSecrets(this.env, readConfig(this.env)));
      redacting.add(this.env);
    }
    return new SandboxRun(startSandbox(sandboxBindings(this.env, this.ctx.exports), job));
  }
}

/** The loader and the host's own entrypoints (egress gateway, capability bindings), with the run's props. */
export function sandboxBindings(env: Env, exports: Cloudflare.Exports): SandboxBindings {
  const capabilities: Record<CapabilityName, (props: CapabilityProps) => Fetcher> = {
    docs: (props) => exports.DocsCapability({ props }),
    tracker: (props) => exports.TrackerCapability({ props }),
  };
  return {
    loader: env.LOADER,
    gateway: (props) => exports.EgressGateway({ props }),
    capability: (name, props) => capabilities[name](props),
    connector: (props) => exports.ConnectorBinding({ props }),
  };
}
