// Rollout phases per tenant:
//   GET  /v1/rollout                  the phases rolled back, with the figures that tripped them (auditors, operators)
//   POST /v1/rollout/{phase}/enable   {reason}: switch a rolled-back phase on again, recorded (operators)
import { z } from "zod";
import { budgetFor, type TenantBudget } from "../budget/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";
import { AUDITOR_ROLE } from "./evidence-route.ts";

export const ROLLOUT_ROUTE = "/v1/rollout";
const OPERATOR_ROLE = "operator";

export async function serveRollout(request: Request, identity: Identity, budgets: DurableObjectNamespace<TenantBudget>): Promise<Response> {
  if (request.method !== "GET") return errorResponse(new PlatformError("method_not_allowed", "Read the rollout with GET."), { allow: "GET" });
  if (!identity.roles.includes(AUDITOR_ROLE) && !identity.roles.includes(OPERATOR_ROLE)) {
    return errorResponse(
      new PlatformError("forbidden", `Reading the rollout needs the ${AUDITOR_ROLE} or ${OPERATOR_ROLE} role.`, { scope: [AUDITOR_ROLE, OPERATOR_ROLE] }),
    );
  }
  return jsonResponse({ tenant: identity.tenant, ...(await budgetFor(budgets, identity.tenant).rolloutState()) });
}

export async function serveRolloutEnable(
  request: Request,
  phase: number,
  identity: Identity,
  budgets: DurableObjectNamespace<TenantBudget>,
): Promise<Response> {
  if (request.method !== "POST") return errorResponse(new PlatformError("method_not_allowed", "Re-enable a phase with POST."), { allow: "POST" });
  if (!identity.roles.includes(OPERATOR_ROLE))
    return errorResponse(new PlatformError("forbidden", `Re-enabling a phase needs the ${OPERATOR_ROLE} role.`, { scope: [OPERATOR_ROLE] }));
  const body = z
    .object({ reason: z.string().trim().min(1).max(1_000) })
    .strict()
    .safeParse(await request.json().catch(() => null));
  if (!body.success)
    return errorResponse(new PlatformError("bad_request", 'Send {"reason": "why it is safe again"}.', { hint: "The reason is recorded as evidence." }));
  const done = await budgetFor(budgets, identity.tenant).reenable(phase, identity.actor, body.data.reason, identity.tenant);
  if (!done.ok) return errorResponse(new PlatformError("conflict", `Phase ${phase} is not rolled back for tenant ${identity.tenant}.`));
  return jsonResponse({ tenant: identity.tenant, phase, reenabledBy: identity.actor, ...(await budgetFor(budgets, identity.tenant).rolloutState()) });
}
