// What every capability binding shares: the run it serves (props set by the runtime,
// never by the code), and recording each call, allowed or refused, in the run's ledger.
import { WorkerEntrypoint } from "cloudflare:workers";
import type { CapabilityName } from "../contracts/index.ts";
import { logEvent } from "../log/index.ts";
import { recordActivity } from "./activity-recorder.ts";
import { capabilityError, codeOf } from "./capability-error.ts";
import type { CapabilityProps } from "./runtime-profile.ts";

export abstract class CapabilityBinding extends WorkerEntrypoint<Env, CapabilityProps> {
  protected abstract readonly capability: CapabilityName;

  /** Runs one call, records it, and rethrows a refusal as a typed error the code can read. */
  protected async call<T>(method: string, work: () => Promise<T>): Promise<T> {
    const started = Date.now();
    try {
      const result = await work();
      await this.record(method, "allowed", null, started);
      return result;
    } catch (error) {
      const code = codeOf(error);
      await this.record(method, "denied", code, started);
      if (code === "internal_error") {
        logEvent("error", { event: "capability_failed", capability: this.capability, method, error: String(error) });
        throw capabilityError("upstream_failed", `${this.capability}.${method} failed`);
      }
      throw error;
    }
  }

  /** Refuses any option that tries to name a tenant: a binding only ever serves its own. */
  protected ownTenantOnly(options: unknown): void {
    if (options && typeof options === "object" && "tenant" in options) {
      throw capabilityError("scope_violation", `${this.capability} serves tenant ${this.ctx.props.tenant} only; another tenant's data is out of scope`);
    }
  }

  private record(method: string, decision: "allowed" | "denied", reason: string | null, started: number): Promise<void> {
    return recordActivity(this.env.SESSION_LEDGER, this.ctx.props, {
      kind: "capability",
      at: new Date(started).toISOString(),
      capability: this.capability,
      method,
      decision,
      reason,
      durationMs: Math.max(0, Date.now() - started),
    });
  }
}
