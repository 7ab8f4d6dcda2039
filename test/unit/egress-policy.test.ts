import { describe, expect, it } from "vitest";
import { canonicalHostName, type EgressRule, EgressRuleSchema } from "../../src/contracts/index.ts";
import { decideEgress, type EgressAttempt } from "../../src/execution/egress-policy.ts";
import { classifyHost, formatIPv6, parseIPv4, parseIPv6 } from "../../src/execution/ip-address.ts";
import { outboundTraceparent, runTrace } from "../../src/execution/trace-context.ts";

const rule = (r: Partial<EgressRule> & Pick<EgressRule, "host" | "protocol">): EgressRule => EgressRuleSchema.parse(r);
const attempt = (a: Partial<EgressAttempt>): EgressAttempt => ({
  protocol: "https",
  host: "api.example.com",
  port: 443,
  method: "GET",
  path: "/",
  via: "code",
  ...a,
});

const RULES: EgressRule[] = [
  rule({ host: "api.example.com", protocol: "https", methods: ["GET", "POST"], paths: ["/v1/"] }),
  rule({ host: "*.cdn.example.com", protocol: "https" }),
  rule({ host: "db.example.com", protocol: "tcp", ports: [5432] }),
  rule({
    host: "tracker.example.com",
    protocol: "https",
    methods: ["POST"],
    capability: "tracker",
    inject: { header: "authorization", secret: "EGRESS_TRACKER_TOKEN", format: "Bearer {secret}" },
  }),
];

describe("IP literals", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["0x7f.0.0.1", "127.0.0.1"],
    ["0x7f000001", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["017700000001", "127.0.0.1"],
    ["0", "0.0.0.0"],
    ["0xa9fea9fe", "169.254.169.254"],
    ["169.254.43518", "169.254.169.254"],
  ])("reads the IPv4 spelling %s as %s", (text, canonical) => {
    const parsed = parseIPv4(text);
    expect(parsed).not.toBeNull();
    expect(classifyHost(text).canonical).toBe(canonical);
  });

  it.each(["256.0.0.1", "1.2.3.4.5", "0x100000000", "1..2", "08.1.1.1", "example.com"])("does not take %s for an IPv4 literal", (text) => {
    expect(parseIPv4(text)).toBeNull();
  });

  it.each([
    ["[::1]", "::1"],
    ["[0:0:0:0:0:0:0:1]", "::1"],
    ["[::ffff:127.0.0.1]", "::ffff:7f00:1"],
    ["[FE80::1]", "fe80::1"],
    ["[2001:db8:0:0:1:0:0:1]", "2001:db8::1:0:0:1"],
  ])("reads the IPv6 spelling %s as %s", (text, canonical) => {
    const groups = parseIPv6(text);
    expect(groups && formatIPv6(groups)).toBe(canonical);
  });

  it.each(["[::1%eth0]", "[1::2::3]", "[12345::]", "[::ffff:1.2.3]"])("does not take %s for an IPv6 literal", (text) => {
    expect(parseIPv6(text)).toBeNull();
  });
});

describe("egress decisions", () => {
  it.each<[string, Partial<EgressAttempt>, string | number]>([
    ["an allowed GET under an allowed path", { path: "/v1/items" }, 0],
    ["an allowed POST", { method: "POST", path: "/v1/items" }, 0],
    ["a subdomain of a wildcard rule", { host: "img.cdn.example.com" }, 1],
    ["a deeper subdomain of a wildcard rule", { host: "a.b.cdn.example.com" }, 1],
    ["a TCP connection to an allowed port", { protocol: "tcp", host: "db.example.com", port: 5432, method: undefined, path: undefined }, 2],
    ["the tracker capability's request", { host: "tracker.example.com", method: "POST", via: "tracker" }, 3],
    ["the bare suffix of a wildcard rule", { host: "cdn.example.com" }, "host_not_allowed"],
    ["a look-alike suffix", { host: "evilcdn.example.com" }, "host_not_allowed"],
    ["an unlisted host", { host: "evil.example" }, "host_not_allowed"],
    ["another port", { path: "/v1/x", port: 8443 }, "port_not_allowed"],
    ["plain http where https is allowed", { protocol: "http", port: 80, path: "/v1/x" }, "host_not_allowed"],
    ["a method the rule does not list", { method: "DELETE", path: "/v1/x" }, "method_not_allowed"],
    ["a path outside the prefix", { path: "/admin" }, "path_not_allowed"],
    ["an encoded traversal under the prefix", { path: "/v1/%2e%2e/admin" }, "path_not_allowed"],
    ["an encoded slash under the prefix", { path: "/v1/..%2fadmin" }, "path_not_allowed"],
    ["a backslash under the prefix", { path: "/v1/..\\admin" }, "path_not_allowed"],
    ["TCP without a tcp rule", { protocol: "tcp", host: "api.example.com", port: 443, method: undefined }, "host_not_allowed"],
    ["TCP to another port", { protocol: "tcp", host: "db.example.com", port: 22, method: undefined }, "port_not_allowed"],
    ["the code using the tracker capability's rule", { host: "tracker.example.com", method: "POST", via: "code" }, "host_not_allowed"],
    ["a capability using the code's rule", { path: "/v1/x", via: "tracker" }, "host_not_allowed"],
    ["credentials in the URL", { userinfo: true, path: "/v1/x" }, "userinfo_in_url"],
    ["an ftp URL", { protocol: "ftp", port: 21 }, "protocol_not_allowed"],
    ["a websocket URL", { protocol: "wss", port: 443 }, "protocol_not_allowed"],
  ])("decides %s", (_case, partial, expected) => {
    const verdict = decideEgress(attempt(partial), RULES);
    if (typeof expected === "number") expect(verdict).toMatchObject({ allowed: true, rule: expected });
    else expect(verdict).toMatchObject({ allowed: false, reason: expected });
  });

  it("hands the matching rule's secret injection to the gateway", () => {
    const verdict = decideEgress(attempt({ host: "tracker.example.com", method: "POST", via: "tracker" }), RULES);
    expect(verdict.allowed && verdict.inject).toEqual({ header: "authorization", secret: "EGRESS_TRACKER_TOKEN", format: "Bearer {secret}" });
  });

  describe("hardening: private, loopback and local destinations are denied whatever the rules", () => {
    const permissive = [rule({ host: "*.example.com", protocol: "http", ports: [80, 8080] })];
    it.each([
      "127.0.0.1",
      "127.1",
      "0x7f.0.0.1",
      "0x7f000001",
      "2130706433",
      "0177.0.0.1",
      "127.255.255.254",
      "0",
      "0.0.0.0",
      "10.0.0.1",
      "172.16.0.1",
      "172.31.255.255",
      "192.168.1.1",
      "100.64.0.1",
      "169.254.169.254",
      "0xa9fea9fe",
      "224.0.0.1",
      "255.255.255.255",
      "[::1]",
      "[0:0:0:0:0:0:0:1]",
      "[::]",
      "[::ffff:127.0.0.1]",
      "[::ffff:7f00:1]",
      "[::ffff:169.254.169.254]",
      "[::127.0.0.1]",
      "[64:ff9b::a9fe:a9fe]",
      "[fc00::1]",
      "[fd12:3456:789a::1]",
      "[fe80::1]",
      "[ff02::1]",
      "localhost",
      "LOCALHOST",
      "localhost.",
      "api.localhost",
      "localhost.localdomain",
      "ip6-localhost",
    ])("denies %s as address_not_allowed", (host) => {
      expect(decideEgress(attempt({ protocol: "http", host, port: 80 }), permissive)).toMatchObject({ allowed: false, reason: "address_not_allowed" });
    });

    it("allows a private address only when a rule names it literally, in whichever spelling the code uses", () => {
      const literal = [rule({ host: "127.0.0.1", protocol: "http", ports: [9000] })];
      for (const host of ["127.0.0.1", "127.1", "0x7f000001", "2130706433"]) {
        expect(decideEgress(attempt({ protocol: "http", host, port: 9000 }), literal)).toMatchObject({ allowed: true });
      }
      expect(decideEgress(attempt({ protocol: "http", host: "127.0.0.2", port: 9000 }), literal)).toMatchObject({
        allowed: false,
        reason: "address_not_allowed",
      });
      expect(decideEgress(attempt({ protocol: "http", host: "localhost", port: 9000 }), literal)).toMatchObject({
        allowed: false,
        reason: "address_not_allowed",
      });
    });

    it("never lets a wildcard rule match an IP literal", () => {
      expect(decideEgress(attempt({ host: "93.184.216.34" }), [rule({ host: "*.example.com", protocol: "https" })])).toMatchObject({
        allowed: false,
        reason: "host_not_allowed",
      });
    });
  });
});

describe("host names: one spelling for matching and resolving", () => {
  it.each([
    ["Allowed.Example", "allowed.example"],
    ["allowed.example.", "allowed.example"],
    ["BÜCHER.example", "xn--bcher-kva.example"],
    ["bücher.example.", "xn--bcher-kva.example"],
    ["*.Bücher.Example", "*.xn--bcher-kva.example"],
    ["0x7f.1", "127.0.0.1"],
    ["[0:0::1]", "[::1]"],
  ])("spells %s as %s", (text, canonical) => {
    expect(canonicalHostName(text)).toBe(canonical);
  });

  it.each(["", "a b", "host/path", "user@host", "a..b", "."])("refuses %j as a host name", (text) => {
    expect(canonicalHostName(text)).toBeNull();
  });

  it("normalises a rule's host at load, so a rule and a request written differently still meet", () => {
    expect(rule({ host: "Bücher.Example.", protocol: "https" }).host).toBe("xn--bcher-kva.example");
    const rules = [rule({ host: "bücher.example", protocol: "https" })];
    for (const host of ["xn--bcher-kva.example", "XN--BCHER-KVA.EXAMPLE.", "bücher.example"]) {
      expect(decideEgress(attempt({ host }), rules)).toMatchObject({ allowed: true });
    }
  });

  it.each(["metadata.google.internal", "metadata.goog", "metadata", "instance-data.ec2.internal", "*.google.internal"])(
    "refuses a rule naming the cloud metadata service %s at load",
    (host) => {
      const parsed = EgressRuleSchema.safeParse({ host, protocol: "http" });
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues[0]?.message).toMatch(/metadata/);
    },
  );

  it.each(["metadata.google.internal", "METADATA.google.internal.", "metadata.goog", "instance-data"])(
    "denies the metadata name %s whatever the rules say, even a catch-all wildcard",
    (host) => {
      // Rules no contract could load (the schema refuses them): the decision stands on its own.
      const everything = ["*.internal", "*.goog", host.toLowerCase().replace(/\.$/, "")].map((h) => ({ host: h, protocol: "http" }) as EgressRule);
      expect(decideEgress(attempt({ protocol: "http", host, port: 80 }), everything)).toMatchObject({ allowed: false, reason: "address_not_allowed" });
    },
  );
});

describe("trace context (W3C traceparent)", () => {
  it("continues a valid traceparent, in any case, keeping its sampling", () => {
    expect(runTrace("00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01")).toEqual({
      traceId: "4bf92f3577b34da6a3ce929d0e0e4736",
      parentSpanId: "00f067aa0ba902b7",
      sampled: true,
    });
    expect(runTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").sampled).toBe(false);
  });

  it.each([
    undefined,
    42,
    "",
    "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
    "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
    "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
  ])("starts a fresh sampled trace for %j", (value) => {
    const trace = runTrace(value);
    expect(trace).toMatchObject({ traceId: expect.stringMatching(/^[0-9a-f]{32}$/), parentSpanId: null, sampled: true });
    expect(trace.traceId).not.toBe("4bf92f3577b34da6a3ce929d0e0e4736");
  });

  it("gives each outbound request a span of its own in the run's trace", () => {
    const trace = runTrace("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01");
    const [a, b] = [outboundTraceparent(trace), outboundTraceparent(trace)];
    expect(a).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(a).not.toBe(b);
  });
});
