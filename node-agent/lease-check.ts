/**
 * Whether the local agent holds a live lease, as a guard process sees it in agent.json: the facts
 * are read here (the file, the agent process, the boot), the rule is node-agent/core/admission.ts.
 * Both sides read CLOCK_MONOTONIC, which is one clock for all processes of a boot.
 */
import type { Clock } from './clock';
import { leaseProblem as admissionLeaseProblem } from './core/admission';
import { bootId, type LeaseRecord } from './local-state';
import { processFrozen, sameProcessAlive } from './process-util';

/** Why there is no live lease, or undefined when there is one. */
export function leaseProblem(
  lease: LeaseRecord | undefined,
  who: { cluster: string; node: string; stateDir: string },
  clock: Clock,
  boot: string | undefined = bootId(),
): string | undefined {
  const agent = lease
    ? { alive: sameProcessAlive(lease.pid, lease.pidStart), frozen: processFrozen(lease.pid) }
    : undefined;
  return admissionLeaseProblem(lease, who, clock.mono(), boot, agent);
}
