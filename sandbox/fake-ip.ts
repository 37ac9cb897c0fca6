/**
 * A stand-in for the node agent's `ip` command (FAILOVER_AGENT_IP_COMMAND) when one host plays
 * several nodes: each node's interface addresses live in a file of its own, changed and listed as
 * `ip` would (`-o -4 addr show [to IP/32]`, `addr add|del IP/32 dev DEV`, with `ip`'s errors for an
 * address already there or missing). Used by the sandbox and the agent tests.
 */
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Writes `dir/ip` for the node whose files live in `dir` and returns its path. Its addresses are
 * `dir/addrs` ("IP DEV" lines), changed under a lock so that concurrent starts and stops of different
 * groups do not lose each other's change; every call is logged in `dir/ip-calls.log`.
 */
export function writeFakeIp(dir: string): string {
  const script = `#!/bin/sh
state="${join(dir, 'addrs')}"
echo "$@" >> "${join(dir, 'ip-calls.log')}"
exec 9>"$state.lock"
flock 9
touch "$state"
case "$*" in
  "-o -4 addr show"*)
    to=""
    if [ "$5" = "to" ]; then to="\${6%/32}"; fi
    while read -r ip dev; do
      if [ -z "$to" ] || [ "$ip" = "$to" ]; then
        echo "2: $dev    inet $ip/32 scope global $dev\\       valid_lft forever preferred_lft forever"
      fi
    done < "$state" ;;
  "addr add "*)
    ip="\${3%/32}"
    if grep -q "^$ip " "$state"; then echo "RTNETLINK answers: File exists" >&2; exit 2; fi
    echo "$ip $5" >> "$state" ;;
  "addr del "*)
    ip="\${3%/32}"
    if ! grep -q "^$ip " "$state"; then echo "RTNETLINK answers: Cannot assign requested address" >&2; exit 2; fi
    grep -v "^$ip " "$state" > "$state.tmp"; mv "$state.tmp" "$state" ;;
  *) echo "sandbox ip: unsupported: $*" >&2; exit 1 ;;
esac
`;
  const file = join(dir, 'ip');
  writeFileSync(file, script);
  chmodSync(file, 0o755);
  writeFileSync(join(dir, 'addrs'), '');
  return file;
}

/** The addresses on the fake interface of the node in `dir`. */
export function fakeIpAddresses(dir: string): string[] {
  try {
    return readFileSync(join(dir, 'addrs'), 'utf8')
      .split('\n')
      .map((l) => l.split(' ')[0]!)
      .filter(Boolean);
  } catch {
    return [];
  }
}

/** The node resets or halts: its interface addresses are gone. */
export function clearFakeIp(dir: string): void {
  writeFileSync(join(dir, 'addrs'), '');
}
