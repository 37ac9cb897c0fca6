/**
 * Controller-side observation of instances and Availability Zones (one describe call per kind per
 * reconcile, shared by all groups) and the optional hard fence, StopInstances with force.
 */
import {
  DescribeAvailabilityZonesCommand,
  DescribeInstanceStatusCommand,
  DescribeInstancesCommand,
  type EC2Client,
  StopInstancesCommand,
} from '@aws-sdk/client-ec2';
import { toDomainError } from '../../shared/aws/errors';
import type { InstanceState, InstanceStatus } from '../../shared/core/model';
import type { ActionOutcome, MutationContext } from '../../shared/core/ports';

const STATES = new Set<InstanceState>([
  'pending',
  'running',
  'stopping',
  'stopped',
  'shutting-down',
  'terminated',
]);

/**
 * State and status checks of the given instances. Ids that do not exist are absent from the
 * answer (a filter, so that one wrong id does not fail the whole call).
 */
export async function describeInstances(
  ec2: EC2Client,
  ids: readonly string[],
  signal: AbortSignal,
): Promise<Record<string, InstanceStatus>> {
  const out: Record<string, InstanceStatus> = {};
  if (ids.length === 0) return out;
  const context = { action: 'ec2:DescribeInstances', resource: `instances ${ids.join(', ')}` };
  try {
    let token: string | undefined;
    do {
      const page = await ec2.send(
        new DescribeInstancesCommand({
          Filters: [{ Name: 'instance-id', Values: [...ids] }],
          NextToken: token,
        }),
        { abortSignal: signal },
      );
      for (const r of page.Reservations ?? []) {
        for (const i of r.Instances ?? []) {
          const state = i.State?.Name as InstanceState | undefined;
          if (i.InstanceId && state && STATES.has(state)) out[i.InstanceId] = { state };
        }
      }
      token = page.NextToken;
    } while (token);
  } catch (e) {
    throw toDomainError(e, context);
  }
  const existing = Object.keys(out);
  if (existing.length === 0) return out;
  try {
    const status = await ec2.send(
      new DescribeInstanceStatusCommand({ InstanceIds: existing, IncludeAllInstances: true }),
      { abortSignal: signal },
    );
    for (const s of status.InstanceStatuses ?? []) {
      const view = s.InstanceId ? out[s.InstanceId] : undefined;
      if (!view) continue;
      const checks = [s.InstanceStatus?.Status, s.SystemStatus?.Status];
      if (checks.includes('impaired')) view.statusOk = false;
      else if (checks.every((c) => c === 'ok')) view.statusOk = true;
    }
  } catch (e) {
    throw toDomainError(e, {
      action: 'ec2:DescribeInstanceStatus',
      resource: `instances ${existing.join(', ')}`,
    });
  }
  return out;
}

/** State of the given zones (`available`, `impaired`, `unavailable`, ...); unknown names are absent. */
export async function describeZones(
  ec2: EC2Client,
  zones: readonly string[],
  signal: AbortSignal,
): Promise<Record<string, string>> {
  if (zones.length === 0) return {};
  try {
    const res = await ec2.send(
      new DescribeAvailabilityZonesCommand({ Filters: [{ Name: 'zone-name', Values: [...zones] }] }),
      { abortSignal: signal },
    );
    const out: Record<string, string> = {};
    for (const z of res.AvailabilityZones ?? []) if (z.ZoneName && z.State) out[z.ZoneName] = z.State;
    return out;
  } catch (e) {
    throw toDomainError(e, {
      action: 'ec2:DescribeAvailabilityZones',
      resource: `zones ${zones.join(', ')}`,
    });
  }
}

/** Hard fence: StopInstances with Force. Completion is confirmed by a later DescribeInstances. */
export async function stopInstance(
  ec2: EC2Client,
  instanceId: string,
  ctx: MutationContext,
): Promise<ActionOutcome> {
  const context = { action: 'ec2:StopInstances', resource: `instance ${instanceId}` };
  try {
    const current = await describeInstances(ec2, [instanceId], ctx.signal);
    const state = current[instanceId]?.state;
    if (state === 'stopped' || state === 'terminated')
      return { changed: false, detail: `instance ${instanceId} is already ${state}` };
    await ctx.beforeMutation();
    const res = await ec2.send(new StopInstancesCommand({ InstanceIds: [instanceId], Force: true }), {
      abortSignal: ctx.signal,
    });
    const now = res.StoppingInstances?.[0]?.CurrentState?.Name ?? 'unknown';
    return {
      changed: true,
      detail: `StopInstances (force) on ${instanceId}: ${now}; promotion waits until it is stopped`,
    };
  } catch (e) {
    throw toDomainError(e, context);
  }
}
