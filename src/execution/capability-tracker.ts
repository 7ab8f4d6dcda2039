// `env.TRACKER` in the sandbox: comment on and label issues in the tracker at
// TRACKER_BASE_URL, only for the actions the run's scope grants. Requests go through the
// egress gateway (so the contract's rules apply and are recorded) with the token the
// rule injects; the code never holds it.
import { z } from "zod";
import { readConfig } from "../config/index.ts";
import { type BindingSelf, CapabilityBinding, recordedCall, selfOf } from "./capability-base.ts";
import { capabilityError } from "./capability-error.ts";

const IssueId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/, "an issue id: letters, digits, _ and -");
const Comment = z.string().min(1).max(10_000);
const Labels = z
  .array(z.string().regex(/^[A-Za-z0-9][A-Za-z0-9 _:.-]{0,49}$/))
  .min(1)
  .max(20);

export class TrackerCapability extends CapabilityBinding {
  protected readonly capability = "tracker" as const;

  async getIssue(id: unknown): Promise<unknown> {
    return recordedCall(selfOf(this), "getIssue", async () => {
      requireAny(selfOf(this), ["tracker.comment", "tracker.label"], "getIssue");
      return request(selfOf(this), "GET", `issues/${valid(IssueId, id, "id")}`);
    });
  }

  async comment(id: unknown, body: unknown): Promise<unknown> {
    return recordedCall(selfOf(this), "comment", async () => {
      requireAny(selfOf(this), ["tracker.comment"], "comment");
      return request(selfOf(this), "POST", `issues/${valid(IssueId, id, "id")}/comments`, { body: valid(Comment, body, "body") });
    });
  }

  async label(id: unknown, labels: unknown): Promise<unknown> {
    return recordedCall(selfOf(this), "label", async () => {
      requireAny(selfOf(this), ["tracker.label"], "label");
      return request(selfOf(this), "POST", `issues/${valid(IssueId, id, "id")}/labels`, { labels: valid(Labels, labels, "labels") });
    });
  }
}

// Helpers are functions, not methods: every method of the entrypoint is callable over RPC by the code.
function requireAny(self: BindingSelf, actions: string[], method: string): void {
  if (!actions.some((action) => self.ctx.props.scope.includes(action))) {
    throw capabilityError(
      "action_not_in_scope",
      `tracker.${method} needs ${actions.join(" or ")}; this run's scope is ${self.ctx.props.scope.join(", ") || "empty"}`,
    );
  }
}

function valid<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw capabilityError("invalid_request", `${what}: ${parsed.error.issues[0]?.message ?? "invalid"}`);
  return parsed.data;
}

async function request(self: BindingSelf, method: string, path: string, body?: unknown): Promise<unknown> {
  const base = readConfig(self.env).trackerBaseUrl;
  const url = new URL(path, base.href.endsWith("/") ? base : `${base.href}/`);
  const gateway = self.ctx.exports.EgressGateway({ props: { ...self.ctx.props, via: "tracker" } });
  const response = await gateway.fetch(url, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const denied = response.headers.get("x-egress-denied");
  if (denied) throw capabilityError("egress_denied", `the tracker at ${url.origin} is not reachable under this contract (${denied})`);
  if (!response.ok) throw capabilityError("upstream_failed", `the tracker answered ${response.status}`);
  return response.status === 204 ? null : await response.json();
}
