// The evidence viewer in the browser: asks once for a bearer token of the tenant (kept in
// this tab's sessionStorage), fetches the session's signed export and the server's JWKS,
// draws the timeline of runs, filters it, and verifies the chain here, with the same
// verifier `npm run verify` runs. Everything from the bundle goes in as text, never HTML.
import { en } from "zod/locales";
import { config } from "zod/mini";
import type { EvidenceBundle } from "../../evidence/evidence-bundle.ts";
import { type Problem, type VerifyReport, verifyBundle } from "../../evidence/verify-bundle.ts";
import { facets, filterRuns, type RunFilter, runsOf, type SessionRun, UNFINISHED } from "../session-runs.ts";

const TOKEN_KEY = "agent-exec:viewer-token";
// zod/mini loads no messages by default; the verifier's "bundle_malformed" should read as it does in the CLI.
config(en());

type Child = Node | string | null | undefined | false;

function el<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) if (child !== null && child !== undefined && child !== false) element.append(child);
  return element;
}

function byId<T extends HTMLElement>(id: string): T {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found as T;
}

const session = document.body.dataset.session ?? "";
const state: { bundle: EvidenceBundle | null; jwks: unknown; runs: SessionRun[]; broken: Set<string> } = {
  bundle: null,
  jwks: null,
  runs: [],
  /** Runs a record of which the last verification named. */
  broken: new Set(),
};

function setStatus(text: string, kind: "info" | "error" = "info"): void {
  const status = byId("status");
  status.textContent = text;
  status.className = kind;
  status.hidden = text === "";
}

function askForToken(reason?: string): void {
  byId("session-view").hidden = true;
  byId("token-panel").hidden = false;
  if (reason) setStatus(reason, "error");
  byId<HTMLInputElement>("token").focus();
}

async function load(): Promise<void> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (!token) return askForToken();
  setStatus("Loading the session's signed export…");
  let response: Response;
  try {
    response = await fetch(`/v1/sessions/${encodeURIComponent(session)}/export`, { headers: { authorization: `Bearer ${token}` } });
  } catch (error) {
    return setStatus(`The server could not be reached: ${String(error)}`, "error");
  }
  if (!response.ok) {
    const body = (await response.json().catch(() => null)) as { error?: { code?: string; message?: string; hint?: string } } | null;
    const error = body?.error;
    const text = `${error?.code ?? response.status}: ${error?.message ?? response.statusText}${error?.hint ? ` ${error.hint}` : ""}`;
    if (response.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      return askForToken(`The token was refused (${text}). Paste another one.`);
    }
    return setStatus(response.status === 404 ? `No evidence for session ${session} that this token may read.` : text, "error");
  }
  state.bundle = (await response.json()) as EvidenceBundle;
  // The keys of the server this page came from; the verifier reports it checked against them.
  state.jwks = await fetch("/.well-known/jwks.json")
    .then((r) => (r.ok ? r.json() : null))
    .catch(() => null);
  state.runs = runsOf(state.bundle.records);
  state.broken = new Set();
  byId("verify-result").hidden = true;
  setStatus("");
  byId("token-panel").hidden = true;
  byId("session-view").hidden = false;
  renderSummary(state.bundle);
  renderFilters(state.runs);
  renderTimeline();
  renderPolicies(state.bundle);
  openLinkedPolicy();
}

function renderSummary(bundle: EvidenceBundle): void {
  const open = state.runs.filter((r) => r.termination === UNFINISHED).length;
  byId("summary").replaceChildren(
    `Tenant ${bundle.tenant} · ${plural(state.runs.length, "run", "runs")}${open ? ` (${open} unfinished)` : ""} · ${bundle.records.length} records · head #${bundle.head.seq} `,
    el("code", { title: bundle.head.hash }, short(bundle.head.hash)),
    ` · exported ${bundle.exportedAt}`,
  );
}

function renderFilters(runs: SessionRun[]): void {
  const { terminations, contracts } = facets(runs);
  const fill = (select: HTMLSelectElement, all: string, values: Array<[string, number]>) =>
    select.replaceChildren(el("option", { value: "" }, `${all} (${runs.length})`), ...values.map(([value, n]) => el("option", { value }, `${value} (${n})`)));
  fill(byId("filter-termination"), "every termination", terminations);
  fill(byId("filter-contract"), "every contract", contracts);
}

function currentFilter(): RunFilter {
  return { termination: byId<HTMLSelectElement>("filter-termination").value, contract: byId<HTMLSelectElement>("filter-contract").value };
}

function renderTimeline(): void {
  const shown = filterRuns(state.runs, currentFilter());
  byId("shown").textContent = `${shown.length} of ${plural(state.runs.length, "run", "runs")} shown`;
  byId("timeline").replaceChildren(...shown.map(runItem));
}

function runItem(run: SessionRun): HTMLElement {
  const latency = run.latencyMs;
  const egress = run.activity?.egress;
  const calls = run.activity?.capabilities;
  return el(
    "li",
    {
      class: `run term-${run.termination}${state.broken.has(run.runId) ? " broken" : ""}`,
      "data-run-id": run.runId,
      "data-termination": run.termination,
      "data-contract": run.contract.id,
    },
    el(
      "div",
      { class: "run-head" },
      el("span", { class: `badge term-${run.termination}`, "data-field": "termination" }, run.termination),
      el("strong", {}, `${run.contract.id}@${run.contract.version}`),
      el("span", { class: "muted" }, ` ${run.contract.class} · `),
      el("time", { datetime: run.startedAt }, run.startedAt),
      el("code", { class: "muted run-id" }, run.runId),
    ),
    el(
      "dl",
      {},
      field("identity", `${run.actor} (tenant ${run.tenant}${run.roles.length ? `, roles ${run.roles.join(", ")}` : ""}) via ${run.intent}`),
      field(
        "decision",
        run.decision ? `${run.decision.outcome}${run.decision.reasons.length ? `: ${run.decision.reasons.join(", ")}` : ""}` : "none (refused before policy)",
      ),
      field("policy", el("a", { href: `#policy-${run.policyHash}`, class: "policy-link", title: run.policyHash }, short(run.policyHash))),
      run.plan && field("plan", run.plan.join(", ")),
      run.error && field("error", `${run.error.code}: ${run.error.message}`),
      field(
        "latency",
        latency ? `start ${ms(latency.start)} · exec ${ms(latency.exec)} · total ${ms(latency.total)}` : "no finish recorded: still running or cut off",
      ),
      run.reconciledBy &&
        field("closed by", `${run.reconciledBy === "ledger_alarm" ? "the ledger's alarm" : "the local supervisor"} (the run's own finish never came)`),
      run.late && field("late", "a finish arrived after the run had been closed"),
      field("records", `#${run.startSeq}${run.finishSeq === null ? "" : ` → #${run.finishSeq}`}`),
    ),
    egress && egress.total > 0
      ? el(
          "div",
          { class: "outbound" },
          el("h4", {}, `Outbound calls: ${egress.allowed} allowed, ${egress.denied} denied${egress.drift ? `, ${egress.drift} off plan` : ""}`),
          el(
            "ul",
            {},
            ...egress.attempts.map((a) =>
              el(
                "li",
                { class: `egress ${a.decision}` },
                `${a.method ?? a.protocol} ${a.destination}${a.path ?? ""} → ${a.decision}${a.status === null ? "" : ` ${a.status}`}${a.reason ? ` (${a.reason})` : ""}${a.drift ? " · off plan" : ""} · ${ms(a.durationMs)}`,
              ),
            ),
            egress.truncated ? el("li", { class: "muted" }, `…${egress.total - egress.attempts.length} more`) : null,
          ),
        )
      : el("p", { class: "outbound muted" }, "No outbound calls."),
    calls && calls.total > 0
      ? el(
          "div",
          { class: "capabilities" },
          el("h4", {}, `Capability calls: ${calls.total}${calls.denied ? `, ${calls.denied} denied` : ""}`),
          el(
            "ul",
            {},
            ...calls.calls.map((c) => el("li", { class: c.decision }, `${c.capability}.${c.method} → ${c.decision}${c.reason ? ` (${c.reason})` : ""}`)),
          ),
        )
      : null,
  );
}

function field(name: string, value: Node | string): DocumentFragment {
  const fragment = document.createDocumentFragment();
  fragment.append(el("dt", {}, name), el("dd", { "data-field": name }, value));
  return fragment;
}

function renderPolicies(bundle: EvidenceBundle): void {
  const entries = Object.entries(bundle.policies);
  byId("policies").replaceChildren(
    ...(entries.length === 0
      ? [el("p", { class: "muted" }, "No policy snapshots in this bundle.")]
      : entries.map(([hash, snapshot]) =>
          el(
            "details",
            { id: `policy-${hash}`, class: "policy" },
            el("summary", {}, el("code", {}, hash)),
            el("p", { class: "muted" }, `Also at /v1/policy/${hash} on the server (with a token).`),
            el("pre", {}, JSON.stringify(snapshot, null, 2)),
          ),
        )),
  );
}

function openLinkedPolicy(): void {
  const target = location.hash.startsWith("#policy-") ? document.getElementById(location.hash.slice(1)) : null;
  if (target instanceof HTMLDetailsElement) {
    target.open = true;
    target.scrollIntoView({ block: "start" });
  }
}

async function verify(): Promise<void> {
  if (!state.bundle) return;
  const result = byId("verify-result");
  result.hidden = false;
  result.className = "";
  result.textContent = "Verifying…";
  const report = await verifyBundle(state.bundle, state.jwks ? { jwks: state.jwks } : {});
  result.className = report.ok ? "verified" : "broken";
  result.replaceChildren(...reportLines(report));
  state.broken = new Set(report.problems.flatMap((p) => (p.record ? [p.record.runId] : [])));
  renderTimeline();
}

function reportLines(report: VerifyReport): HTMLElement[] {
  const keys = report.signature
    ? `signed by kid ${report.signature.kid ?? "?"} (${report.signature.alg ?? "?"}), key ${report.signature.keySource === "trusted" ? "from this server's JWKS" : "from the bundle itself"}`
    : "no readable signature";
  const head = el(
    "p",
    { class: "verdict" },
    report.ok
      ? `Verified: the signature, all ${report.records} links of the chain and ${plural(report.policies, "policy hash", "policy hashes")} check out; ${keys}.`
      : `Broken: ${plural(report.problemCount, "problem", "problems")}; ${keys}.`,
  );
  if (report.ok) return [head];
  const list = el("ul", { class: "problems" }, ...report.problems.map(problemItem));
  const more = report.problemCount > report.problems.length ? el("p", {}, `…and ${report.problemCount - report.problems.length} more.`) : null;
  return more ? [head, list, more] : [head, list];
}

function problemItem(problem: Problem): HTMLElement {
  const at = problem.record ? `record #${problem.record.index + 1} (seq ${problem.record.seq}, ${problem.record.kind}, ${problem.record.runId})` : "the bundle";
  return el("li", { "data-code": problem.code }, el("code", {}, problem.code), ` at ${at}: ${problem.message}`);
}

function plural(n: number, one: string, many: string): string {
  return `${n} ${n === 1 ? one : many}`;
}

function short(hash: string): string {
  return `${hash.slice(0, 12)}…`;
}

function ms(value: number | null): string {
  return value === null ? "–" : `${Math.round(value * 10) / 10} ms`;
}

byId<HTMLFormElement>("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = byId<HTMLInputElement>("token");
  const token = input.value.trim().replace(/^Bearer\s+/i, "");
  input.value = "";
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  void load();
});
byId("forget-token").addEventListener("click", () => {
  sessionStorage.removeItem(TOKEN_KEY);
  state.bundle = null;
  askForToken("Token forgotten.");
});
byId("verify").addEventListener("click", () => void verify());
byId("filter-termination").addEventListener("change", renderTimeline);
byId("filter-contract").addEventListener("change", renderTimeline);
window.addEventListener("hashchange", openLinkedPolicy);
void load();
