// IP literal parsing and classification for the egress gateway. Parses every spelling
// an address can take (inet_aton forms: decimal, octal, hex, short; IPv6 with "::",
// embedded IPv4, brackets), so a denied address cannot be smuggled in another form.
import { canonicalHostName, isCloudMetadataName } from "../contracts/index.ts";

export type AddressClass =
  | "public"
  | "unspecified"
  | "loopback"
  | "private"
  | "shared" // 100.64.0.0/10, carrier-grade NAT
  | "link_local" // 169.254.0.0/16 (cloud metadata) and fe80::/10
  | "unique_local" // fc00::/7
  | "multicast"
  | "reserved"
  | "ipv4_embedded"; // IPv4-mapped, -compatible and NAT64 IPv6: denied whatever they embed

/** Parses an IPv4 literal the way inet_aton does (1-4 parts, each decimal, 0-octal or 0x-hex). */
export function parseIPv4(text: string): number | null {
  const parts = text.split(".");
  if (parts.length < 1 || parts.length > 4 || parts.some((part) => part === "")) return null;
  const values: number[] = [];
  for (const part of parts) {
    let value: number;
    if (/^0x[0-9a-f]*$/i.test(part)) value = part.length === 2 ? 0 : Number.parseInt(part.slice(2), 16);
    else if (/^0[0-7]+$/.test(part)) value = Number.parseInt(part.slice(1), 8);
    else if (/^(0|[1-9][0-9]*)$/.test(part)) value = Number(part);
    else return null;
    if (!Number.isSafeInteger(value)) return null;
    values.push(value);
  }
  const last = values.pop() ?? 0;
  if (values.some((value) => value > 255)) return null;
  if (last >= 2 ** (8 * (4 - values.length))) return null;
  return values.reduce((acc, value, index) => acc + value * 2 ** (8 * (3 - index)), 0) + last;
}

/** Parses an IPv6 literal (with or without brackets) into eight 16-bit groups; zone ids are refused. */
export function parseIPv6(text: string): number[] | null {
  let body = text.startsWith("[") && text.endsWith("]") ? text.slice(1, -1) : text;
  if (!body.includes(":") || body.includes("%")) return null;
  body = body.toLowerCase();
  let tail: number[] = [];
  const lastColon = body.lastIndexOf(":");
  const maybeV4 = body.slice(lastColon + 1);
  if (maybeV4.includes(".")) {
    if (!/^\d{1,3}(\.\d{1,3}){3}$/.test(maybeV4)) return null;
    const v4 = parseIPv4(maybeV4);
    if (v4 === null) return null;
    tail = [Math.floor(v4 / 65536), v4 % 65536];
    body = `${body.slice(0, lastColon + 1)}0:0`;
  }
  const halves = body.split("::");
  if (halves.length > 2) return null;
  const parse = (half: string) =>
    half === "" ? [] : half.split(":").map((group) => (/^[0-9a-f]{1,4}$/.test(group) ? Number.parseInt(group, 16) : Number.NaN));
  const head = parse(halves[0] ?? "");
  const rest = halves.length === 2 ? parse(halves[1] ?? "") : [];
  if ([...head, ...rest].some(Number.isNaN)) return null;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return null;
  const groups = [...head, ...Array<number>(halves.length === 2 ? missing : 0).fill(0), ...rest];
  if (tail.length === 2) groups.splice(6, 2, tail[0] ?? 0, tail[1] ?? 0);
  return groups;
}

const inRange = (address: number, base: string, bits: number): boolean => {
  const start = parseIPv4(base) ?? 0;
  const size = 2 ** (32 - bits);
  return address >= start && address < start + size;
};

export function classifyIPv4(address: number): AddressClass {
  if (inRange(address, "0.0.0.0", 8)) return address === 0 ? "unspecified" : "reserved";
  if (inRange(address, "127.0.0.0", 8)) return "loopback";
  if (inRange(address, "10.0.0.0", 8) || inRange(address, "172.16.0.0", 12) || inRange(address, "192.168.0.0", 16)) return "private";
  if (inRange(address, "100.64.0.0", 10)) return "shared";
  if (inRange(address, "169.254.0.0", 16)) return "link_local";
  if (inRange(address, "224.0.0.0", 4)) return "multicast";
  if (inRange(address, "240.0.0.0", 4) || inRange(address, "192.0.0.0", 24) || inRange(address, "198.18.0.0", 15)) return "reserved";
  return "public";
}

export function classifyIPv6(groups: number[]): AddressClass {
  const [g0 = 0, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
  const zeroPrefix = g0 === 0 && g1 === 0 && g2 === 0 && g3 === 0 && g4 === 0;
  if (zeroPrefix && g5 === 0 && g6 === 0 && g7 === 0) return "unspecified";
  if (zeroPrefix && g5 === 0 && g6 === 0 && g7 === 1) return "loopback";
  if (zeroPrefix && (g5 === 0xffff || g5 === 0)) return "ipv4_embedded"; // ::ffff:a.b.c.d and ::a.b.c.d
  if (g0 === 0x64 && g1 === 0xff9b) return "ipv4_embedded"; // NAT64 64:ff9b::/96 (and /48)
  if (g0 === 0x2002) return "ipv4_embedded"; // 6to4
  if ((g0 & 0xfe00) === 0xfc00) return "unique_local";
  if ((g0 & 0xffc0) === 0xfe80) return "link_local";
  if ((g0 & 0xff00) === 0xff00) return "multicast";
  return "public";
}

const LOCALHOST_NAMES = new Set(["localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"]);

export type HostKind =
  | { kind: "ipv4"; canonical: string; class: AddressClass }
  | { kind: "ipv6"; canonical: string; class: AddressClass }
  | { kind: "name"; canonical: string; localhost: boolean; metadata: boolean };

/** Classifies a host: an IP literal in any spelling, or a name in its one canonical spelling (host-name.ts). */
export function classifyHost(host: string): HostKind {
  const name = canonicalHostName(host) ?? host.toLowerCase().replace(/\.$/, "");
  const v6 = parseIPv6(name);
  if (v6) return { kind: "ipv6", canonical: `[${formatIPv6(v6)}]`, class: classifyIPv6(v6) };
  const v4 = parseIPv4(name);
  if (v4 !== null) return { kind: "ipv4", canonical: formatIPv4(v4), class: classifyIPv4(v4) };
  return { kind: "name", canonical: name, localhost: LOCALHOST_NAMES.has(name) || name.endsWith(".localhost"), metadata: isCloudMetadataName(name) };
}

export function formatIPv4(address: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(address / 2 ** shift) % 256).join(".");
}

/** RFC 5952 text: lowercase, leading zeros dropped, the longest run of zero groups as "::". */
export function formatIPv6(groups: number[]): string {
  let best = { start: -1, length: 0 };
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.length && j - i > 1) best = { start: i, length: j - i };
    i = j;
  }
  const hex = groups.map((group) => group.toString(16));
  if (best.start < 0) return hex.join(":");
  return `${hex.slice(0, best.start).join(":")}::${hex.slice(best.start + best.length).join(":")}`;
}
