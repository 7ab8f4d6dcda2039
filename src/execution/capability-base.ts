// What every capability binding shares: the run it serves (props set by the runtime,
// never by the code), and recording each call, allowed or refused, in the run's ledger.
// Every method of an entrypoint is callable over RPC by whoever holds its stub (the
// sandboxed code holds it as ctx.env.<NAME>), so a binding's only methods are the ones the
// code may call; what they share are the functions below, never methods.
import { WorkerEntrypoint } from "cloudflare:workers";
import type { CapabilityName } from "../contracts/index.ts";
import { logEvent } from "../log/index.ts";
import { recordActivity } from "./activity-recorder.ts";
import { capabilityError, codeOf } from "./capability-error.ts";
import type { CapabilityProps } from "./runtime-profile.ts";

export abstract class CapabilityBinding extends WorkerEntrypoint<Env, CapabilityProps> {
  /** An instance field, not a method: nothing the code can call. */
  protected abstract readonly capability: CapabilityName;
}

/** What the shared functions need of a binding (its env, its run's props, which capability it is). */
export type BindingSelf = { env: Env; ctx: ExecutionContext<CapabilityProps> & { exports: Cloudflare.Exports }; capability: CapabilityName };

export function selfOf(binding: CapabilityBinding): BindingSelf {
  return binding as unknown as BindingSelf;
}

/** Runs one call, records it, and rethrows a refusal as a typed error the code can read. */
export async function recordedCall<T>(self: BindingSelf, method: string, work: () => Promise<T>): Promise<T> {
  const started = Date.now();
  try {
    const result = await work();
    await record(self, method, "allowed", null, started);
    return result;
  } catch (error) {
    const code = codeOf(error);
    await record(self, method, "denied", code, started);
    if (code === "internal_error") {
      logEvent("error", { event: "capability_failed", capability: self.capability, method, error: String(error) });
      throw capabilityError("upstream_failed", `${self.capability}.${method} failed`);
    }
    throw error;
  }
}

/** Refuses any option that tries to name a tenant: a binding only ever serves its own. */
export function ownTenantOnly(self: BindingSelf, options: unknown): void {
  if (options && typeof options === "object" && "tenant" in options) {
    throw capabilityError("scope_violation", `${self.capability} serves tenant ${self.ctx.props.tenant} only; another tenant's data is out of scope`);
  }
}

function record(self: BindingSelf, method: string, decision: "allowed" | "denied", reason: string | null, started: number): Promise<void> {
  return recordActivity(self.env.SESSION_LEDGER, self.ctx.props, {
    kind: "capability",
    at: new Date(started).toISOString(),
    capability: self.capability,
    method,
    decision,
    reason,
    durationMs: Math.max(0, Date.now() - started),
  });
}
