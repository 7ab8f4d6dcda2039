// One spelling of a host name, for every place that compares or looks one up: a contract's
// egress rule, an EGRESS_RESOLVE key, the host of an outbound request. Without it
// "Allowed.Example." would match a rule for allowed.example and then miss its pinned
// address, and "bücher.example" in a rule would never meet the xn-- form a URL carries.

/**
 * Lowercase, IDNA to its ASCII (xn--) form as URLs carry it, one trailing dot dropped. IP
 * literals pass through the URL parser too (so are in its form); `*.` wildcards keep their
 * star. Returns null for something no URL could carry as a host.
 */
export function canonicalHostName(text: string): string | null {
  const wildcard = text.startsWith("*.");
  const body = wildcard ? text.slice(2) : text;
  if (body === "" || /[\s/?#@\\]/.test(body)) return null;
  let host: string;
  try {
    host = new URL(`http://${body}/`).hostname;
  } catch {
    return null;
  }
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host === "" || host.endsWith(".") || host.includes("..")) return null;
  return wildcard ? `*.${host}` : host;
}

/**
 * Names cloud instance-metadata services answer to (GCP, AWS, Tencent, Equinix, and the
 * bare names resolvers complete). Denied whatever a rule says, as the link-local and
 * shared address ranges these services sit on are: a metadata answer is the host's credentials.
 */
const CLOUD_METADATA_NAMES = new Set([
  "metadata",
  "metadata.google.internal",
  "metadata.goog",
  "instance-data",
  "instance-data.ec2.internal",
  "metadata.tencentyun.com",
  "metadata.platformequinix.com",
]);

/** Whether a canonical host name (or a `*.` pattern) names or covers a cloud metadata service. */
export function isCloudMetadataName(host: string): boolean {
  if (host.startsWith("*.")) {
    const suffix = host.slice(1);
    return [...CLOUD_METADATA_NAMES].some((name) => name.endsWith(suffix));
  }
  return CLOUD_METADATA_NAMES.has(host);
}
