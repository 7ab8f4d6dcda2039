// POST /v1/incidents {incidentId, runIds: [...]}: links an incident to the runs it concerns,
// for the incident link rate in GET /v1/metrics. Auditors and operators of the tenant.
import { z } from "zod";
import { budgetFor, type TenantBudget } from "../budget/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";
import { AUDITOR_ROLE } from "./evidence-route.ts";

export const INCIDENTS_ROUTE = "/v1/incidents";
const MAY_LINK = [AUDITOR_ROLE, "operator"];

const BodySchema = z
  .object({
    incidentId: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:#-]{0,127}$/, "1-128 letters, digits and . _ : # -"),
    runIds: z
      .array(z.string().regex(/^run_[0-9a-f-]{36}$/, "a run id (run_…)"))
      .min(1)
      .max(1_000),
  })
  .strict();

export async function serveIncidents(request: Request, identity: Identity, budgets: DurableObjectNamespace<TenantBudget>): Promise<Response> {
  if (request.method !== "POST") return errorResponse(new PlatformError("method_not_allowed", "Link an incident with POST."), { allow: "POST" });
  if (!identity.roles.some((role) => MAY_LINK.includes(role))) {
    return errorResponse(new PlatformError("forbidden", `Linking incidents needs the ${MAY_LINK.join(" or ")} role.`, { scope: MAY_LINK }));
  }
  const body = BodySchema.safeParse(await request.json().catch(() => null));
  if (!body.success) {
    const issue = body.error.issues[0];
    return errorResponse(
      new PlatformError("bad_request", `Field ${issue?.path.join(".") || "(body)"}: ${issue?.message}.`, {
        hint: 'Send {"incidentId": "INC-42", "runIds": ["run_…"]}.',
      }),
    );
  }
  const { linked } = await budgetFor(budgets, identity.tenant).linkIncident(body.data.incidentId, body.data.runIds, identity.actor);
  return jsonResponse({ tenant: identity.tenant, incidentId: body.data.incidentId, runs: body.data.runIds.length, newLinks: linked });
}
