/** IPv4 arithmetic (pure): dotted quads and CIDR blocks, for the VIP rules. */

/** The address as an unsigned 32-bit number, or undefined when it is not dotted-quad IPv4. */
export function ipv4ToInt(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4) return undefined;
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) return undefined;
    n = n * 256 + Number(p);
  }
  return n;
}

/** True when `ip` lies inside `cidr` (e.g. `10.0.0.0/16`); false for anything unparseable. */
export function cidrContains(cidr: string, ip: string): boolean {
  const [base, bitsText] = cidr.split('/');
  const bits = Number(bitsText);
  const net = base === undefined ? undefined : ipv4ToInt(base);
  const addr = ipv4ToInt(ip);
  if (net === undefined || addr === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32)
    return false;
  // Division instead of bit shifts: JS shifts are 32-bit signed and `>>> 32` is a no-op.
  const size = 2 ** (32 - bits);
  return Math.floor(net / size) === Math.floor(addr / size);
}
