/**
 * Name resolution as the applications see it (the system resolver: /etc/hosts, then DNS), compared
 * with the expected address when one is given.
 */
import { lookup } from 'node:dns/promises';
import { errorText } from '../log';
import { fail, ok, type Probe } from './probe';

/** Resolves `hostname` (IPv4) and, when given, expects `expectIp` among the answers. */
export function dnsProbe(hostname: string, expectIp: string | undefined): Probe {
  return async () => {
    try {
      const addresses = (await lookup(hostname, { all: true, family: 4 })).map((a) => a.address);
      if (expectIp === undefined) return ok(`${hostname} -> ${addresses.join(', ')}`);
      if (addresses.includes(expectIp)) return ok(`${hostname} -> ${expectIp}`);
      return fail(`${hostname} resolves to ${addresses.join(', ') || 'nothing'}, expected ${expectIp}`);
    } catch (e) {
      return fail(`${hostname}: ${(e as NodeJS.ErrnoException).code ?? errorText(e)}`);
    }
  };
}
