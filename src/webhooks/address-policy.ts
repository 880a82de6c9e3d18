import { BlockList, isIP } from 'node:net';

/**
 * Addresses a webhook may not be sent to unless SMSQ_WEBHOOK_ALLOW_PRIVATE=true: anything that
 * reaches this machine or its private network instead of the producer's public endpoint (SSRF).
 */
const BLOCKED = new BlockList();
for (const [network, prefix] of [
  ['0.0.0.0', 8], // "this network", unspecified
  ['10.0.0.0', 8], // private
  ['100.64.0.0', 10], // carrier-grade NAT
  ['127.0.0.0', 8], // loopback
  ['169.254.0.0', 16], // link-local (cloud metadata services live here)
  ['172.16.0.0', 12], // private
  ['192.0.0.0', 24], // IETF protocol assignments
  ['192.168.0.0', 16], // private
  ['198.18.0.0', 15], // benchmarking
  ['224.0.0.0', 4], // multicast
  ['240.0.0.0', 4], // reserved, broadcast
] as const) {
  BLOCKED.addSubnet(network, prefix, 'ipv4');
}
for (const [network, prefix] of [
  ['::', 96], // unspecified, loopback (::1) and the deprecated IPv4-compatible ::a.b.c.d
  ['64:ff9b:1::', 48], // local-use NAT64
  ['fc00::', 7], // unique local (private)
  ['fe80::', 10], // link-local
  ['ff00::', 8], // multicast
] as const) {
  BLOCKED.addSubnet(network, prefix, 'ipv6');
}

/**
 * True for an address a webhook must not reach: loopback, private, link-local, unspecified,
 * multicast or reserved, IPv4 or IPv6 (IPv4-mapped IPv6 is checked as the IPv4 inside it).
 * Anything that is not an IP address is refused too.
 */
export function isBlockedAddress(address: string): boolean {
  const bare = address.replace(/^\[|\]$/g, '').replace(/%.*$/, '');
  const family = isIP(bare);
  if (family === 4) return BLOCKED.check(bare, 'ipv4');
  if (family !== 6) return true;
  // BlockList matches an IPv4-mapped address (::ffff:127.0.0.1, ::ffff:7f00:1) against the IPv4 rules.
  return BLOCKED.check(bare, 'ipv6');
}
