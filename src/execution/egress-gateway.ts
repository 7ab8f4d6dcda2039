// The egress gateway: every dynamic worker's globalOutbound, the way its connect() opens
// sockets (openSocket, through the sandbox's sockets shim), and the way out for
// capability bindings. It sees each fetch() and connect(), decides it against the
// contract's rules (egress-policy.ts), strips hop-by-hop and credential headers the
// code set, injects the rule's secret (and redacts it from what comes back), lets
// redirects come back to the sandbox so every hop is checked again, and records every
// attempt (destination, decision, status, bytes, duration, drift; the path and query
// redacted) in the run's ledger.
import { connect } from "cloudflare:sockets";
import { WorkerEntrypoint } from "cloudflare:workers";
import { platformSecrets, readConfig } from "../config/index.ts";
import type { EgressActivity } from "../evidence/index.ts";
import { type Redactor, redactor } from "../redaction/index.ts";
import { admitEgress, recordActivity } from "./activity-recorder.ts";
import { withinPlan } from "./destination.ts";
import { decideEgress, type EgressDenial } from "./egress-policy.ts";
import { classifyHost } from "./ip-address.ts";
import { isRunOver, markRunOver } from "./runs-over.ts";
import type { GatewayProps } from "./runtime-profile.ts";
import { countingStream, redactingStream } from "./streams.ts";
import { outboundTraceparent } from "./trace-context.ts";

/** Set by the sandbox harness when the code's URL carried userinfo (workerd drops it before egress). */
export const USERINFO_MARKER = "x-agent-exec-userinfo";

/** Headers that describe one connection, never forwarded (Host is set from the target URL). */
const HOP_BY_HOP = [
  "host",
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "proxy-connection",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
];
/**
 * Headers that would tell an upstream (or a proxy in front of it) a different client, host or
 * method than the request itself says: forwarding and method-override headers. The upstream
 * sees the request as the rule allowed it, nothing that rewrites it behind the rule's back.
 */
const REWRITING_HEADERS = [
  "forwarded",
  "via",
  "x-forwarded-for",
  "x-forwarded-host",
  "x-forwarded-proto",
  "x-forwarded-port",
  "x-forwarded-prefix",
  "x-forwarded-server",
  "x-real-ip",
  "x-client-ip",
  "true-client-ip",
  "x-original-url",
  "x-rewrite-url",
  "x-original-host",
  "x-host",
  "x-http-method-override",
  "x-http-method",
  "x-method-override",
  // the trace is the run's: the gateway sets traceparent itself
  "traceparent",
  "tracestate",
];
/** Credentials the code may not send itself; a rule's injection is the only way to authenticate. */
const CREDENTIAL_HEADERS = ["authorization", "cookie", "x-api-key", "x-auth-token", "api-key"];

const DEFAULT_PORTS: Record<string, number> = { "https:": 443, "http:": 80 };

export class EgressGateway extends WorkerEntrypoint<Env, GatewayProps> {
  override async fetch(request: Request): Promise<Response> {
    const started = Date.now();
    const props = this.ctx.props;
    let url: URL;
    try {
      url = new URL(request.url);
    } catch {
      return this.deny({ destination: "(malformed)", protocol: "?", method: request.method, path: null }, "malformed_destination", started, null);
    }
    const protocol = url.protocol.replace(/:$/, "");
    const port = url.port ? Number(url.port) : (DEFAULT_PORTS[url.protocol] ?? 0);
    // One spelling of the host (case, IDNA, trailing dot) for matching, resolving and the record alike.
    const host = classifyHost(url.hostname).canonical;
    const destination = `${protocol}://${host}:${port}`;
    // The path and query as evidence keeps them: through the same redaction as everything else recorded.
    const where = { destination, protocol, method: request.method, path: recordedPath(this.env, url) };
    // a connector's requests go where its operation goes: drift is judged per operation call (the binding records it)
    const drift = props.plan && !props.via.startsWith("connector:") ? !withinPlan(props.plan, { protocol, host, port }) : null;
    const verdict = decideEgress(
      {
        protocol,
        host,
        port,
        method: request.method,
        path: url.pathname,
        via: props.via,
        userinfo: request.headers.has(USERINFO_MARKER) || url.username !== "" || url.password !== "",
      },
      props.rules,
    );
    if (!verdict.allowed) return this.deny(where, verdict.reason, started, drift);

    let secret: string | undefined;
    if (verdict.inject) {
      const value = (this.env as unknown as Record<string, unknown>)[verdict.inject.secret];
      if (typeof value !== "string" || value === "") return this.deny(where, "secret_unavailable", started, drift);
      secret = value;
    }

    // Last before anything leaves: the run's ledger admits it (within subRequests, run not finished) or records why not.
    const refused = await this.admit(where, started, drift, injectedNames(verdict.inject));
    if (refused) return this.refusal(where, refused);

    const headers = outboundHeaders(request.headers);
    if (verdict.inject && secret) headers.set(verdict.inject.header, verdict.inject.format.replace("{secret}", secret));
    // the run's trace goes on: each request a span of it (whatever trace headers the code set)
    if (props.trace) headers.set("traceparent", outboundTraceparent(props.trace));
    const target = this.target(url, host);
    // admitted, but the run ended while this request waited to be sent: it does not leave
    if (isRunOver(props.runId)) {
      this.ctx.waitUntil(
        this.record(where, { decision: "denied", reason: "run_finished", status: null, bytesOut: 0, bytesIn: 0, started, drift, injected: [] }),
      );
      return this.refusal(where, "run_finished");
    }
    const sent = countingStream();
    const hasBody = request.body !== null && request.method !== "GET" && request.method !== "HEAD";
    let upstream: Response;
    try {
      upstream = await fetch(target, {
        method: request.method,
        headers,
        body: hasBody ? request.body?.pipeThrough(sent.stream) : null,
        redirect: "manual", // the sandbox follows redirects itself, through this gateway again
      });
    } catch (error) {
      this.ctx.waitUntil(
        this.record(where, {
          decision: "allowed",
          reason: "upstream_unreachable",
          status: null,
          bytesOut: sent.bytes(),
          bytesIn: 0,
          started,
          drift,
          injected: injectedNames(verdict.inject),
        }),
      );
      return new Response(JSON.stringify({ error: "upstream_unreachable", destination, detail: String(error).slice(0, 200) }), {
        status: 502,
        headers: { "content-type": "application/json", "x-egress-error": "upstream_unreachable" },
      });
    }

    // Recorded before the code sees the response: nothing it does afterwards (or fails to do,
    // like reading the body) can keep an attempt out of the evidence. Bytes in are as declared.
    const declared = Number(upstream.headers.get("content-length") ?? 0);
    await this.record(where, {
      decision: "allowed",
      reason: null,
      status: upstream.status,
      bytesOut: sent.bytes(),
      bytesIn: upstream.headers.has("content-length") && Number.isSafeInteger(declared) ? declared : null,
      started,
      drift,
      injected: injectedNames(verdict.inject),
    });
    const responseHeaders = new Headers(upstream.headers);
    let body = upstream.body;
    if (secret) {
      for (const [name, value] of responseHeaders) if (value.includes(secret)) responseHeaders.set(name, value.split(secret).join("[REDACTED]"));
      if (body) body = body.pipeThrough(redactingStream(secret));
      responseHeaders.delete("content-length"); // redaction may change the length
    }
    return new Response(body, { status: upstream.status, statusText: upstream.statusText, headers: responseHeaders });
  }

  /**
   * A socket that reaches the gateway as globalOutbound (the sandbox's own connect() goes
   * through openSocket instead): the same decision, admission and record; a refused one is
   * closed at once, since such a socket cannot carry a reason.
   */
  override async connect(socket: Socket): Promise<void> {
    const answer = await this.openSocket((await socket.opened).localAddress ?? "", {}, socket.readable);
    if (!answer.ok) {
      await socket.close();
      return;
    }
    await answer.readable.pipeTo(socket.writable).catch(() => {});
  }

  /**
   * A socket the sandbox's connect() asks for (the sockets shim, sandbox-harness.ts): decided,
   * admitted and opened here before the code's `opened` resolves, so a refused one rejects
   * there. The code's bytes arrive as `outgoing`; the upstream's go back as the answer's stream.
   */
  async openSocket(
    target: string,
    options: { secureTransport?: string; allowHalfOpen?: boolean },
    outgoing: ReadableStream<Uint8Array>,
  ): Promise<SocketAnswer> {
    const started = Date.now();
    const props = this.ctx.props;
    const address = splitAddress(String(target));
    const host = classifyHost(address.host).canonical;
    const port = address.port;
    const where = { destination: `tcp://${host}:${port}`, protocol: "tcp", method: null, path: null };
    const drift = props.plan ? !withinPlan(props.plan, { protocol: "tcp", host, port }) : null;
    const refuse = async (reason: string): Promise<SocketAnswer> => {
      await outgoing.cancel(reason).catch(() => {});
      return { ok: false, reason };
    };
    const verdict = decideEgress({ protocol: "tcp", host, port, via: props.via }, props.rules);
    if (!verdict.allowed) {
      await this.record(where, { decision: "denied", reason: verdict.reason, status: null, bytesOut: 0, bytesIn: 0, started, drift, injected: [] });
      return await refuse(verdict.reason);
    }
    const refused = await this.admit(where, started, drift, []);
    if (refused) return await refuse(refused);

    if (isRunOver(props.runId)) return await refuse("run_finished");
    const override = readConfig(this.env).egress.resolve.get(host);
    const upstream = connect(
      { hostname: override?.hostname ?? host, port: override ? Number(override.port || 80) : port },
      { secureTransport: options.secureTransport === "on" ? "on" : "off", allowHalfOpen: options.allowHalfOpen === true },
    );
    try {
      await upstream.opened;
    } catch {
      this.ctx.waitUntil(
        this.record(where, { decision: "allowed", reason: "upstream_unreachable", status: null, bytesOut: 0, bytesIn: 0, started, drift, injected: [] }),
      );
      return await refuse("upstream_unreachable");
    }
    const sent = countingStream();
    const received = countingStream();
    const up = outgoing.pipeThrough(sent.stream).pipeTo(upstream.writable);
    const down = upstream.readable.pipeThrough(received.stream);
    // recorded when the connection is over, with what crossed it
    this.ctx.waitUntil(
      Promise.allSettled([up, upstream.closed]).then(() =>
        this.record(where, {
          decision: "allowed",
          reason: null,
          status: null,
          bytesOut: sent.bytes(),
          bytesIn: received.bytes(),
          started,
          drift,
          injected: [],
        }),
      ),
    );
    return { ok: true, readable: down, remoteAddress: `${host}:${port}` };
  }

  private async deny(where: Where, reason: EgressDenial, started: number, drift: boolean | null): Promise<Response> {
    await this.record(where, { decision: "denied", reason, status: 403, bytesOut: 0, bytesIn: 0, started, drift, injected: [] });
    return this.refusal(where, reason);
  }

  /**
   * Asks the run's ledger to admit one request the rules allow; null when admitted, else why
   * not (the ledger has recorded the refusal). A ledger that cannot answer admits nothing.
   */
  private async admit(where: Where, started: number, drift: boolean | null, injected: string[]): Promise<RunRefusal | null> {
    const props = this.ctx.props;
    // a run over in this isolate stays over: its code, still running, is refused here without asking again
    if (isRunOver(props.runId)) return "run_finished";
    const attempt = this.activity(where, { decision: "allowed", reason: null, status: null, bytesOut: 0, bytesIn: null, started, drift, injected });
    const answer = await admitEgress(this.env.SESSION_LEDGER, props, props.subRequests, attempt);
    if (answer.ok) return null;
    if (answer.reason === "run_finished") markRunOver(props.runId);
    if (answer.reason === "run_finished" || answer.reason === "subrequest_limit") return answer.reason;
    await this.record(where, { decision: "denied", reason: "evidence_unavailable", status: null, bytesOut: 0, bytesIn: 0, started, drift, injected: [] });
    return "evidence_unavailable";
  }

  private refusal(where: Where, reason: EgressDenial | RunRefusal): Response {
    return new Response(
      JSON.stringify({
        error: "egress_denied",
        reason,
        destination: where.destination,
        hint: REFUSAL_HINTS[reason as RunRefusal] ?? "This contract's egress rules do not allow it; the attempt is recorded.",
      }),
      {
        status: 403,
        headers: { "content-type": "application/json", "x-egress-denied": reason },
      },
    );
  }

  /** Where the request really goes: the URL itself, or the EGRESS_RESOLVE override of its host (rules matched the URL). */
  private target(url: URL, host: string): URL {
    const override = readConfig(this.env).egress.resolve.get(host);
    const target = new URL(url.pathname + url.search, override ?? url);
    target.username = "";
    target.password = "";
    return target;
  }

  private record(where: Where, outcome: Outcome): Promise<void> {
    return recordActivity(this.env.SESSION_LEDGER, this.ctx.props, this.activity(where, outcome));
  }

  private activity(where: Where, outcome: Outcome): EgressActivity {
    return {
      kind: "egress",
      at: new Date(outcome.started).toISOString(),
      via: this.ctx.props.via,
      protocol: where.protocol,
      method: where.method,
      destination: where.destination.slice(0, 300),
      path: where.path?.slice(0, 300) ?? null,
      decision: outcome.decision,
      reason: outcome.reason,
      status: outcome.status,
      bytesOut: outcome.bytesOut,
      bytesIn: outcome.bytesIn,
      durationMs: Math.max(0, Date.now() - outcome.started),
      drift: outcome.drift,
      injected: outcome.injected,
    };
  }
}

type Where = { destination: string; protocol: string; method: string | null; path: string | null };
/** What openSocket answers the sockets shim: the upstream's bytes, or why there is no socket. */
type SocketAnswer = { ok: true; readable: ReadableStream<Uint8Array>; remoteAddress: string } | { ok: false; reason: string };
type Outcome = {
  decision: "allowed" | "denied";
  reason: string | null;
  status: number | null;
  bytesOut: number;
  bytesIn: number | null;
  started: number;
  drift: boolean | null;
  injected: string[];
};

/** Why the run, not the rules, refused a request: its subRequests are spent, it has finished, or its ledger cannot admit. */
type RunRefusal = "subrequest_limit" | "run_finished" | "evidence_unavailable";
const REFUSAL_HINTS: Record<RunRefusal, string> = {
  subrequest_limit: "This run has made as many outbound requests as its contract's limits.subRequests allows; the attempt is recorded.",
  run_finished: "This run has finished (its finish record is written); nothing more of it leaves. The attempt is recorded.",
  evidence_unavailable: "The run's evidence ledger could not admit the request, so it did not leave.",
};

/** The code's headers minus hop-by-hop ones (and those Connection names), forwarding and method overrides, credentials and our own markers. */
function outboundHeaders(incoming: Headers): Headers {
  const headers = new Headers(incoming);
  const named = (incoming.get("connection") ?? "").split(",").map((name) => name.trim().toLowerCase());
  for (const name of [...HOP_BY_HOP, ...REWRITING_HEADERS, ...CREDENTIAL_HEADERS, ...named, USERINFO_MARKER]) if (name) headers.delete(name);
  for (const [name] of incoming) if (name.startsWith("cf-") || name.startsWith("x-agent-exec-")) headers.delete(name);
  return headers;
}

const redactors = new WeakMap<object, Redactor>();

/** A URL's path and query, redacted (detectors and the platform's own secret values), for the record. */
function recordedPath(env: Env, url: URL): string {
  let redact = redactors.get(env);
  if (!redact) {
    redact = redactor({ secrets: platformSecrets(env, readConfig(env)) });
    redactors.set(env, redact);
  }
  return redact.text(url.pathname + url.search).text;
}

function injectedNames(inject: { header: string } | undefined): string[] {
  return inject ? [inject.header] : [];
}

/** "host:port" or "[v6]:port" as a socket's address reports it. */
function splitAddress(address: string): { host: string; port: number } {
  const match = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(address);
  return match?.[1] && match[2] ? { host: match[1], port: Number(match[2]) } : { host: address, port: 0 };
}
