/**
 * What a transition says to machines (the EventBridge detail, validated by
 * schema/transition-event.schema.json) and to people (the SNS subject and text: one sentence with
 * what happened, where, why, and what to do). Pure: no AWS, no clock.
 */
import type { AlertKind } from '../../shared/core/plan';
import type { TransitionEvent } from '../../shared/core/ports';

export type Severity = 'critical' | 'warning' | 'info';

/** Every kind of transition, with its severity (an SNS message attribute, for subscription filters). */
export const SEVERITY: Record<AlertKind, Severity> = {
  'failover.started': 'warning',
  'failover.completed': 'info',
  'failover.failed': 'critical',
  'group.stopped': 'info',
  'monitor.error': 'critical',
  'monitor.warning': 'warning',
  'monitor.recovered': 'info',
  'resource.restarted': 'warning',
  'node.fenced': 'critical',
  'request.done': 'info',
  'request.rejected': 'warning',
  'config.applied': 'info',
};

export const ALERT_KINDS = Object.keys(SEVERITY) as AlertKind[];

/** Where the deployment runs; stamped on every event by the notifier. */
export interface DeploymentContext {
  region?: string;
  account?: string;
}

/** The EventBridge detail of a transition (version 1; fields are only ever added). */
export interface TransitionDetail {
  version: 1;
  kind: AlertKind;
  severity: Severity;
  cluster: string;
  group?: string;
  epoch?: number;
  node?: string;
  previousOwner?: string;
  instanceId?: string;
  reason?: string;
  message: string;
  /** ISO 8601 (UTC) time of the transition. */
  at: string;
  /** ISO 8601 start of the failover (failover.completed). */
  startedAt?: string;
  /** Milliseconds from startedAt to at (failover.completed). */
  durationMs?: number;
  region?: string;
  account?: string;
}

export function transitionDetail(event: TransitionEvent, where: DeploymentContext = {}): TransitionDetail {
  return {
    version: 1,
    kind: event.kind,
    severity: SEVERITY[event.kind],
    cluster: event.cluster,
    ...(event.group !== undefined ? { group: event.group } : {}),
    ...(event.epoch !== undefined ? { epoch: event.epoch } : {}),
    ...(event.node !== undefined ? { node: event.node } : {}),
    ...(event.previousOwner !== undefined ? { previousOwner: event.previousOwner } : {}),
    ...(event.instanceId !== undefined ? { instanceId: event.instanceId } : {}),
    ...(event.reason !== undefined ? { reason: event.reason } : {}),
    message: event.message,
    at: new Date(event.at).toISOString(),
    ...(event.startedAt !== undefined
      ? {
          startedAt: new Date(event.startedAt).toISOString(),
          durationMs: Math.max(0, event.at - event.startedAt),
        }
      : {}),
    ...(where.region ? { region: where.region } : {}),
    ...(where.account ? { account: where.account } : {}),
  };
}

/** SNS message attributes: subscriptions filter on them (FilterPolicy), e.g. {"severity": ["critical"]}. */
export function messageAttributes(
  d: TransitionDetail,
): Record<string, { DataType: 'String'; StringValue: string }> {
  const attrs: Record<string, string> = { cluster: d.cluster, kind: d.kind, severity: d.severity };
  if (d.group) attrs.group = d.group;
  return Object.fromEntries(
    Object.entries(attrs).map(([k, v]) => [k, { DataType: 'String' as const, StringValue: v }]),
  );
}

const KIND_TITLE: Record<AlertKind, string> = {
  'failover.started': 'failover started',
  'failover.completed': 'online',
  'failover.failed': 'FAILED',
  'group.stopped': 'stopped',
  'monitor.error': 'monitor error',
  'monitor.warning': 'monitor warning',
  'monitor.recovered': 'monitor recovered',
  'resource.restarted': 'entry point repaired',
  'node.fenced': 'node fenced',
  'request.done': 'request done',
  'request.rejected': 'request rejected',
  'config.applied': 'definition applied',
};

/** A one-line subject for people (SNS subjects are limited to 100 characters, printable ASCII). */
export function subjectOf(d: TransitionDetail): string {
  const where = `${d.cluster}${d.group ? `/${d.group}` : ''}`;
  const node =
    d.node && d.kind.startsWith('failover.') && d.kind !== 'failover.failed' ? ` on ${d.node}` : '';
  return `[failover] ${d.severity.toUpperCase()} ${where}: ${KIND_TITLE[d.kind]}${node}`
    .replace(/[^\x20-\x7e]/g, '?')
    .slice(0, 100);
}

function utc(iso: string): string {
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)} UTC`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * The text of the SNS message (what an e-mail subscriber reads): a sentence with what happened,
 * where and why, then what to do, then the facts one per line.
 */
export function textOf(d: TransitionDetail): string {
  const cl = `--cluster ${d.cluster}`;
  const group = d.group ? `Group ${d.group} of cluster ${d.cluster}` : `Cluster ${d.cluster}`;
  const on = (node?: string) =>
    node ? `${node}${d.instanceId && node === d.node ? ` (instance ${d.instanceId})` : ''}` : 'no node';
  const because = d.reason ? `, because ${d.reason}` : '';
  const when = utc(d.at);
  let what: string;
  let todo: string;
  switch (d.kind) {
    case 'failover.started':
      what = d.previousOwner
        ? `${group} started moving from ${d.previousOwner} to ${on(d.node)} at ${when}${because}.`
        : `${group} started on ${on(d.node)} at ${when}${because}.`;
      todo =
        'Nothing yet: an "online" message follows when the group runs again. If none comes within a few minutes, ' +
        `run "failoverctl status ${cl}" and "failoverctl events ${cl} --group ${d.group}".`;
      break;
    case 'failover.completed':
      what = `${group} is online on ${on(d.node)} since ${when}${d.durationMs !== undefined ? `, ${seconds(d.durationMs)} after the failover started` : ''}.`;
      todo = d.previousOwner
        ? `Find out why ${d.previousOwner} failed (its instance, and the agent's log: journalctl -u failover-agent) before it is needed again.`
        : 'Nothing to do.';
      break;
    case 'failover.failed':
      what = `${group} is not running: ${d.reason ?? d.message} (${when}).`;
      todo =
        `Run "failoverctl status ${cl}" to see why each node is not eligible, repair one, then ` +
        `"failoverctl start ${d.group ?? 'GROUP'} ${cl}" (which also clears nodes set aside after failures).`;
      break;
    case 'group.stopped':
      what = `${group} was stopped at ${when}${d.node ? ` (it ran on ${d.node})` : ''}${because}.`;
      todo = `Nothing if an operator stopped it; otherwise "failoverctl start ${d.group ?? 'GROUP'} ${cl}".`;
      break;
    case 'monitor.error':
    case 'monitor.warning':
      what = `${group}: ${d.message}${d.node ? ` on ${on(d.node)}` : ''} (${when}).`;
      todo =
        d.kind === 'monitor.error'
          ? "The monitor's recovery policy applies (restart, then failover, then its final action); check the application and the node."
          : "Nothing moves for a warning; check the monitor's target if it lasts.";
      break;
    case 'monitor.recovered':
      what = `${group}: ${d.message} (${when}).`;
      todo = 'Nothing to do.';
      break;
    case 'resource.restarted':
      what = `${group}: an entry point had drifted and was put back on ${on(d.node)} at ${when}${because}.`;
      todo = 'Something changed it behind the controller (a script, a person, another tool): find out what.';
      break;
    case 'node.fenced':
      what = `Instance ${d.instanceId ?? '?'} (${d.node ?? '?'}) of cluster ${d.cluster} is being stopped (force) at ${when} to fence it${d.group ? ` before group ${d.group} starts elsewhere` : ''}${because}.`;
      todo = 'Start the instance again once you know why it could not be reached.';
      break;
    case 'request.done':
    case 'request.rejected':
      what = `${group}: ${d.kind === 'request.done' ? 'request done' : 'request rejected'}: ${d.message} (${when}).`;
      todo =
        d.kind === 'request.done'
          ? 'Nothing to do.'
          : 'Fix what the message says and send the request again.';
      break;
    case 'config.applied':
      what = `${group}: ${d.message} (${when}).`;
      todo = 'Nothing to do.';
      break;
  }
  const facts = [
    ['Cluster', d.cluster],
    ['Group', d.group],
    ['Node', d.node],
    ['Instance', d.instanceId],
    ['Previous owner', d.previousOwner],
    ['Epoch', d.epoch?.toString()],
    ['Region', d.region],
    ['Account', d.account],
    ['Time', d.at],
    ['Event', `${d.kind} (${d.severity})`],
  ].filter((f): f is [string, string] => f[1] !== undefined);
  return [what, '', `What to do: ${todo}`, '', ...facts.map(([k, v]) => `${k}: ${v}`)].join('\n');
}
