/**
 * Whether the local agent holds a live lease, as a guard process sees it in agent.json. Both sides
 * read CLOCK_MONOTONIC, which is one clock for all processes of a boot.
 */
import type { Clock } from './clock';
import { bootId, type LeaseRecord } from './local-state';
import { sameProcessAlive } from './process-util';

/** Why there is no live lease, or undefined when there is one. */
export function leaseProblem(
  lease: LeaseRecord | undefined,
  who: { cluster: string; node: string; stateDir: string },
  clock: Clock,
  boot: string | undefined = bootId(),
): string | undefined {
  if (!lease) {
    return `no failover-agent has run with state directory ${who.stateDir} (no agent.json); start it (systemctl start failover-agent) or pass the agent's --state-dir`;
  }
  if (lease.cluster !== who.cluster || lease.node !== who.node) {
    return `the local agent runs as ${lease.cluster}/${lease.node}, not ${who.cluster}/${who.node}`;
  }
  if (boot !== undefined && lease.bootId !== undefined && lease.bootId !== boot) {
    return 'the lease in agent.json is from a previous boot; the agent has not started since';
  }
  if (!sameProcessAlive(lease.pid, lease.pidStart)) {
    return `the local agent (pid ${lease.pid}) is not running; start it (systemctl start failover-agent)`;
  }
  if (lease.leaving) return 'the local agent is shutting down (planned shutdown)';
  if (lease.fenced) return 'the local agent fenced itself after losing its lease and has not renewed it yet';
  const left = lease.leaseUntilMono - clock.mono();
  if (lease.leaseUntilMono <= 0)
    return 'the local agent has no acknowledged renewal yet (is DynamoDB reachable?)';
  if (left <= 0) {
    return `the local agent's lease ran out ${Math.round(-left)} ms ago (no renewal acknowledged for lease - fenceMargin)`;
  }
  return undefined;
}
