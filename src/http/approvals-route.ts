// The human gate over HTTP:
//   GET  /v1/approvals?state=pending&limit=   the tenant's requests (approvers and auditors)
//   GET  /v1/approvals/{id}                   one request, with the code and input (approvers, auditors, the requester)
//   POST /v1/approvals/{id}                   {decision: "approve"|"reject", reason} (approvers, never the requester)
//   GET  /approvals/{id}                      the approval page (plain HTML and a little script; it asks for a token)
import { z } from "zod";
import { APPROVER_ROLE, type ApprovalDesk, type ApprovalView, deskFor } from "../approval/index.ts";
import { budgetFor, type TenantBudget } from "../budget/index.ts";
import { PlatformError } from "../errors/index.ts";
import type { Identity } from "../identity/index.ts";
import { redactor } from "../redaction/index.ts";
import { errorResponse, jsonResponse } from "./error-response.ts";
import { AUDITOR_ROLE, safeDecode } from "./evidence-route.ts";

export const APPROVALS_ROUTE = "/v1/approvals";
export const APPROVAL_SCRIPT_ROUTE = "/approvals-page.js";
export const APPROVAL_STYLE_ROUTE = "/approvals-page.css";
const ID = /^apr_[0-9a-f-]{36}$/;

const ListQuery = z.object({
  state: z.enum(["pending", "approved", "rejected", "used", "expired"]).default("pending"),
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const DecisionBody = z.object({ decision: z.enum(["approve", "reject"]), reason: z.string().trim().min(1).max(1_000) }).strict();

const oversees = (identity: Identity) => identity.roles.includes(APPROVER_ROLE) || identity.roles.includes(AUDITOR_ROLE);

export async function serveApprovalList(request: Request, identity: Identity, desks: DurableObjectNamespace<ApprovalDesk>): Promise<Response> {
  if (request.method !== "GET") return errorResponse(new PlatformError("method_not_allowed", "Approvals are listed with GET."), { allow: "GET" });
  if (!oversees(identity))
    return errorResponse(
      new PlatformError("forbidden", `Listing approvals needs the ${APPROVER_ROLE} or ${AUDITOR_ROLE} role.`, { scope: [APPROVER_ROLE, AUDITOR_ROLE] }),
    );
  const query = ListQuery.safeParse(Object.fromEntries(new URL(request.url).searchParams));
  if (!query.success) {
    return errorResponse(
      new PlatformError("bad_request", `Query: ${query.error.issues[0]?.message}.`, {
        hint: "Use ?state=pending|approved|rejected|used|expired&limit=1..500.",
      }),
    );
  }
  const approvals = await deskFor(desks, identity.tenant).list(query.data.state, query.data.limit);
  return jsonResponse({ tenant: identity.tenant, state: query.data.state, approvals });
}

export async function serveApproval(
  request: Request,
  rawId: string,
  identity: Identity,
  desks: DurableObjectNamespace<ApprovalDesk>,
  budgetObjects: DurableObjectNamespace<TenantBudget>,
): Promise<Response> {
  const budgets = budgetFor(budgetObjects, identity.tenant);
  const id = safeDecode(rawId);
  const desk = deskFor(desks, identity.tenant);
  const found = id && ID.test(id) ? await desk.get(id) : null;
  // another tenant's request, or one this caller may not see: the same 404 as a missing one
  if (!found || !(oversees(identity) || found.requester === identity.actor)) {
    return errorResponse(new PlatformError("not_found", "No such approval request for this caller."));
  }
  if (request.method === "GET") return jsonResponse(found);
  if (request.method !== "POST") return errorResponse(new PlatformError("method_not_allowed", "Read with GET, decide with POST."), { allow: "GET, POST" });

  let body: unknown;
  try {
    body = await request.json();
  } catch {
    body = null;
  }
  const parsed = DecisionBody.safeParse(body);
  if (!parsed.success) {
    return errorResponse(
      new PlatformError("bad_request", `Field ${parsed.error.issues[0]?.path.join(".") || "(body)"}: ${parsed.error.issues[0]?.message}.`, {
        hint: 'Send {"decision": "approve" | "reject", "reason": "why"}.',
      }),
    );
  }
  // the reason is evidence: a pasted secret does not survive into it
  const reason = redactor().text(parsed.data.reason).text;
  const result = await desk.decide(found.id, identity, parsed.data.decision === "approve" ? "approved" : "rejected", reason);
  if (result.ok) {
    await budgets.noteApprovalDecision({ at: Date.now(), team: result.team, verdict: result.approval.state === "approved" ? "approved" : "rejected" });
    return jsonResponse(result.approval);
  }
  const code = result.code === "not_found" ? "not_found" : result.code === "not_pending" ? "conflict" : "forbidden";
  return errorResponse(new PlatformError(code, result.message));
}

/** The approval page: what would run, for a person to approve or reject. Data arrives by script, with the approver's token. */
export function serveApprovalPage(request: Request, rawId: string): Response {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "The approval page is read with GET."), { allow: "GET, HEAD" });
  }
  const id = safeDecode(rawId);
  if (!id || !ID.test(id))
    return errorResponse(new PlatformError("not_found", "No such approval page.", { hint: "Open the URL the approval_required error gave." }));
  return new Response(approvalPage(id), { headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...PAGE_HEADERS } });
}

export function serveApprovalStyle(): Response {
  return new Response(APPROVAL_STYLE, { headers: { "content-type": "text/css; charset=utf-8", "cache-control": "no-store", ...PAGE_HEADERS } });
}

export function serveApprovalScript(): Response {
  return new Response(APPROVAL_SCRIPT, { headers: { "content-type": "text/javascript; charset=utf-8", "cache-control": "no-store", ...PAGE_HEADERS } });
}

const PAGE_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

function approvalPage(id: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Approval ${id} · agent-exec</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${APPROVAL_STYLE_ROUTE}">
<script type="module" src="${APPROVAL_SCRIPT_ROUTE}"></script>
</head>
<body data-approval="${id}">
<h1>Approval request <code>${id}</code></h1>
<section id="token-panel" hidden>
<form id="token-form"><label for="token">Bearer token of an approver in this tenant</label>
<input id="token" type="password" autocomplete="off" required> <button type="submit">Open</button></form>
</section>
<p id="status" role="status"></p>
<section id="request" hidden>
<dl>
<dt>state</dt><dd class="state" id="f-state"></dd>
<dt>contract</dt><dd id="f-contract"></dd>
<dt>requested by</dt><dd id="f-requester"></dd>
<dt>data class</dt><dd id="f-dataClass"></dd>
<dt>declared plan</dt><dd id="f-plan"></dd>
<dt>policy hash</dt><dd><code id="f-policyHash"></code></dd>
<dt>code / input hash</dt><dd><code id="f-hashes"></code></dd>
<dt>expires</dt><dd id="f-expiresAt"></dd>
<dt>decision</dt><dd id="f-decision"></dd>
</dl>
<section id="f-call-section" hidden><h2>The one call to approve</h2>
<p>The run paused before this call; approving lets this operation run once with exactly these arguments.</p>
<dl><dt>operation</dt><dd><code id="f-operation"></code></dd><dt>arguments sha256</dt><dd><code id="f-argsSha256"></code></dd></dl>
<h3>Arguments (secrets redacted)</h3><pre id="f-args"></pre></section>
<section id="f-task-section"><h2>Code</h2><pre id="f-code"></pre>
<h2>Input</h2><pre id="f-input"></pre></section>
<form id="decide"><label for="reason">Reason (recorded with your decision)</label>
<textarea id="reason" required maxlength="1000"></textarea>
<button type="submit" value="approve" id="approve">Approve exactly this</button> <button type="submit" value="reject" id="reject">Reject</button></form>
</section>
</body>
</html>
`;
}

const APPROVAL_SCRIPT = `// The approval page: reads the request with the approver's token (kept in this tab only) and posts the decision.
const KEY = "agent-exec:approver-token";
const id = document.body.dataset.approval;
const $ = (name) => document.getElementById(name);
const status = (text, error) => { $("status").textContent = text; $("status").className = error ? "error" : ""; };
async function call(method, body) {
  const token = sessionStorage.getItem(KEY);
  const response = await fetch("/v1/approvals/" + encodeURIComponent(id), {
    method, headers: { authorization: "Bearer " + token, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined,
  });
  const json = await response.json().catch(() => null);
  if (response.status === 401) { sessionStorage.removeItem(KEY); ask("The token was refused; paste another."); return null; }
  if (!response.ok) { status((json && json.error ? json.error.code + ": " + json.error.message : String(response.status)), true); return null; }
  return json;
}
function ask(message) { $("request").hidden = true; $("token-panel").hidden = false; if (message) status(message, true); }
function show(a) {
  $("token-panel").hidden = true; $("request").hidden = false; status("");
  $("f-state").textContent = a.state;
  $("f-contract").textContent = a.contract.id + "@" + a.contract.version + " (" + a.contract.class + ")";
  $("f-requester").textContent = a.requester + " (session " + a.session + ", run " + a.runId + ")";
  $("f-dataClass").textContent = a.dataClass;
  $("f-plan").textContent = a.plan ? a.plan.join(", ") : "no outbound destinations declared";
  $("f-policyHash").textContent = a.policyHash;
  $("f-hashes").textContent = a.codeSha256 + " / " + a.inputSha256;
  $("f-expiresAt").textContent = a.expiresAt;
  $("f-decision").textContent = a.decidedBy ? a.state + " by " + a.decidedBy + ": " + a.reason : "none yet";
  $("f-call-section").hidden = !a.call;
  $("f-task-section").hidden = Boolean(a.call);
  if (a.call) {
    $("f-operation").textContent = a.call.connector + "." + a.call.operation;
    $("f-argsSha256").textContent = a.call.argsSha256;
    $("f-args").textContent = a.call.argsJson;
  }
  $("f-code").textContent = a.code;
  $("f-input").textContent = JSON.stringify(JSON.parse(a.inputJson), null, 2);
  $("decide").hidden = a.state !== "pending";
}
async function load() { if (!sessionStorage.getItem(KEY)) return ask(); const a = await call("GET"); if (a) show(a); }
$("token-form").addEventListener("submit", (event) => { event.preventDefault(); sessionStorage.setItem(KEY, $("token").value.trim()); $("token").value = ""; load(); });
$("decide").addEventListener("submit", async (event) => {
  event.preventDefault();
  const decision = event.submitter && event.submitter.value === "reject" ? "reject" : "approve";
  const a = await call("POST", { decision, reason: $("reason").value });
  if (a) { show(a); status("Recorded: " + a.state + "."); }
});
load();
`;

export type { ApprovalView };

const APPROVAL_STYLE = `body { font: 14px/1.45 system-ui, sans-serif; max-width: 960px; margin: 0 auto; padding: 1.5rem; }
pre { background: #f4f6f8; padding: .75rem; overflow: auto; max-height: 28rem; }
dl { display: grid; grid-template-columns: 10rem 1fr; gap: .2rem .75rem; }
dt { color: #5b6470; } dd { margin: 0; overflow-wrap: anywhere; }
#status.error { color: #cf222e; } .state { font-weight: 600; }
textarea { width: 100%; min-height: 4rem; font: inherit; }
`;
