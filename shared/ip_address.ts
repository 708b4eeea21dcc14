// This module is browser compatible.
/**
 * IP address and host name checks for configuration values: IPv4, IPv6, loopback, the
 * unspecified address, DNS names. Pure string checks: it never resolves a name.
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
