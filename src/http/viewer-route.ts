// The evidence viewer: GET /sessions/{sid} is a page (no token needed to load it; the page
// asks for one and reads the session's signed export with it), /viewer/viewer.js and
// /viewer/viewer.css are its bundled script and style (see src/local/build-viewer.ts).
// Strict CSP: same-origin script, style and fetches only, nothing inline, no framing.
import { PlatformError } from "../errors/index.ts";
import { IdentifierSchema } from "../identity/index.ts";
import { VIEWER_SCRIPT, VIEWER_STYLE, VIEWER_VERSION } from "../viewer/viewer-assets.generated.ts";
import { errorResponse } from "./error-response.ts";
import { safeDecode } from "./evidence-route.ts";

export const VIEWER_ROUTE = /^\/sessions\/([^/]+)$/;
export const VIEWER_ASSETS = { script: "/viewer/viewer.js", style: "/viewer/viewer.css" } as const;

const SECURITY_HEADERS = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

export function serveViewer(request: Request, pathname: string): Response {
  if (request.method !== "GET" && request.method !== "HEAD") {
    return errorResponse(new PlatformError("method_not_allowed", "The viewer is read with GET."), { allow: "GET, HEAD" });
  }
  if (pathname === VIEWER_ASSETS.script) return asset(request, VIEWER_SCRIPT, "text/javascript; charset=utf-8");
  if (pathname === VIEWER_ASSETS.style) return asset(request, VIEWER_STYLE, "text/css; charset=utf-8");

  const raw = VIEWER_ROUTE.exec(pathname)?.[1] ?? "";
  const session = IdentifierSchema.safeParse(safeDecode(raw));
  if (!session.success) {
    return errorResponse(
      new PlatformError("not_found", "No such session page.", {
        hint: "Open /sessions/{sid} with the session id an agent's token names (1-128 letters, digits and . _ : @ -).",
      }),
    );
  }
  return new Response(page(session.data), {
    headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store", ...SECURITY_HEADERS },
  });
}

/** Served from memory; the query string carries the version, so browsers may keep them. */
function asset(request: Request, body: string, type: string): Response {
  const etag = `"${VIEWER_VERSION}"`;
  const headers = { "content-type": type, etag, "cache-control": "public, max-age=300", ...SECURITY_HEADERS };
  if (request.headers.get("if-none-match") === etag) return new Response(null, { status: 304, headers });
  return new Response(body, { headers });
}

function page(session: string): string {
  const sid = escapeHtml(session);
  const v = `?v=${VIEWER_VERSION}`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Session ${sid} · agent-exec evidence</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="${VIEWER_ASSETS.style}${v}">
<script type="module" src="${VIEWER_ASSETS.script}${v}"></script>
</head>
<body data-session="${sid}">
<header>
<h1>Evidence of session <code>${sid}</code></h1>
<p id="summary" class="muted">The runs of this session, from its signed export.</p>
</header>
<section id="token-panel" hidden>
<form id="token-form">
<label for="token">Bearer token of the tenant (the session's own, or an auditor's)</label>
<input id="token" name="token" type="password" autocomplete="off" spellcheck="false" required>
<button type="submit">Read session</button>
</form>
<p class="muted">Kept in this tab's session storage only, sent to this server only, gone when the tab closes.</p>
</section>
<p id="status" role="status" hidden></p>
<section id="session-view" hidden>
<div class="toolbar">
<label>Termination <select id="filter-termination"></select></label>
<label>Contract <select id="filter-contract"></select></label>
<span id="shown" class="muted"></span>
<button id="verify" type="button">Verify chain</button>
<button id="forget-token" type="button">Forget token</button>
</div>
<div id="verify-result" role="status" hidden></div>
<ol id="timeline"></ol>
<h2>Policy snapshots</h2>
<div id="policies"></div>
</section>
<noscript>This page needs JavaScript to read the session's evidence; <code>GET /v1/sessions/${sid}/export</code> returns the same bundle.</noscript>
</body>
</html>
`;
}

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}
