// This module is browser compatible.
/**
 * IP address and host name checks for configuration values (IPv4, IPv6, loopback, the
 * unspecified address, DNS names) and the key a peer's address is limited under. Pure string
 * work: it never resolves a name.
 *
 * @module
 */

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Whether `text` is a dotted-quad IPv4 address. */
export function isIPv4(text: string): boolean {
  return IPV4.test(text);
}

/** Whether `text` is an IPv6 address (without brackets). */
export function isIPv6(text: string): boolean {
  return text.includes(":") && /^[0-9A-Fa-f:.]+$/.test(text) &&
    URL.canParse(`http://[${text}]/`);
}

/** Whether `text` is an IPv4 or IPv6 address. */
export function isIp(text: string): boolean {
  return isIPv4(text) || isIPv6(text);
}

function normalizedIPv6(text: string): string {
  return new URL(`http://[${text}]/`).hostname; // e.g. "[::1]"
}

/**
 * Whether an IP address is a loopback address (127.0.0.0/8, ::1, or IPv4-mapped 127.x).
 *
 * @param ip An IPv4 or IPv6 address.
 *
 * @example
 * ```ts
 * import { isLoopbackIp } from "./ip_address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isLoopbackIp("127.0.0.1"), true);
 * assert.equal(isLoopbackIp("::1"), true);
 * assert.equal(isLoopbackIp("0.0.0.0"), false);
 * ```
 */
export function isLoopbackIp(ip: string): boolean {
  if (isIPv4(ip)) return ip.startsWith("127.");
  if (!isIPv6(ip)) return false;
  const host = normalizedIPv6(ip);
  return host === "[::1]" || /^\[::ffff:7f[0-9a-f]{2}:[0-9a-f]{1,4}\]$/.test(host);
}

/** Whether `ip` is the unspecified address (`0.0.0.0` or `::`), i.e. every interface. */
export function isUnspecifiedIp(ip: string): boolean {
  return ip === "0.0.0.0" || (isIPv6(ip) && normalizedIPv6(ip) === "[::]");
}

const HOST_LABEL = /^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$/;

/** Whether `text` is a DNS host name (labels of letters, digits and inner hyphens). */
export function isHostName(text: string): boolean {
  if (text.length > 253 || /^[\d.]+$/.test(text)) return false; // digits only = a bad IPv4
  return text.split(".").every((label) => HOST_LABEL.test(label));
}

/**
 * The key a peer's address is counted and limited under (pending connections per address,
 * tickets per address): an IPv4 address as is (an IPv4-mapped IPv6 address as its IPv4), an
 * IPv6 address by its /64 prefix — one subscriber usually gets a whole /64, so keying single
 * IPv6 addresses would let one attacker take 2^64 fresh keys. Brackets and a zone are dropped.
 *
 * @param hostname The peer's IP address as the socket reports it.
 * @returns The address key.
 *
 * @example
 * ```ts
 * import { addressKey } from "./ip_address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(addressKey("203.0.113.7"), "203.0.113.7");
 * assert.equal(addressKey("::ffff:203.0.113.7"), "203.0.113.7");
 * assert.equal(addressKey("0:0:0:0:0:ffff:203.0.113.7"), "203.0.113.7");
 * assert.equal(addressKey("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64");
 * assert.equal(addressKey("[2001:DB8::1]"), "2001:db8:0:0::/64");
 * ```
 */
export function addressKey(hostname: string): string {
  const host = hostname.startsWith("[") && hostname.endsWith("]")
    ? hostname.slice(1, -1)
    : hostname;
  if (!host.includes(":")) return host;
  const ip = host.split("%")[0].toLowerCase();
  const mapped = /^(?:(?:0{1,4}:){5}|::(?:0{1,4}:)?)ffff:(\d{1,3}(?:\.\d{1,3}){3})$/.exec(ip);
  if (mapped !== null) return mapped[1];
  const [head, tail] = ip.includes("::") ? ip.split("::", 2) : [ip, undefined];
  const groups = (part: string | undefined) =>
    part === undefined || part === ""
      ? []
      : part.split(":").flatMap((g) => g.includes(".") ? ["0", "0"] : [g]);
  const first = groups(head);
  const last = groups(tail);
  const all = tail === undefined
    ? first
    : [...first, ...Array(Math.max(0, 8 - first.length - last.length)).fill("0"), ...last];
  const prefix = all.slice(0, 4).map((g) => (parseInt(g, 16) || 0).toString(16));
  while (prefix.length < 4) prefix.push("0");
  return `${prefix.join(":")}::/64`;
}
