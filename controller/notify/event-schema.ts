/**
 * JSON Schema (draft 2020-12) of the `detail` of every transition event on the EventBridge bus
 * (source `failover.controller`, detail-type `Failover Transition`): one branch per kind, with the
 * fields that kind always carries. Written to schema/transition-event.schema.json by
 * `npm run schema`; a unit test keeps the file current and the integration tests validate the
 * events reconcile emits against the file.
 */
import type { AlertKind } from '../../shared/core/plan';
import { ALERT_KINDS, SEVERITY } from './message';

/** Fields each kind always carries, beyond those every event has. */
export const REQUIRED_BY_KIND: Record<AlertKind, readonly string[]> = {
  'failover.started': ['group', 'epoch', 'node', 'reason'],
  'failover.completed': ['group', 'epoch', 'node'],
  'failover.failed': ['group', 'epoch'],
  'group.stopped': ['group', 'epoch'],
  'monitor.error': ['group', 'epoch'],
  'monitor.warning': ['group', 'epoch'],
  'monitor.recovered': ['group', 'epoch'],
  'resource.restarted': ['group', 'epoch', 'node'],
  'node.fenced': ['group', 'epoch', 'node', 'instanceId'],
  'request.done': ['group', 'epoch', 'reason'],
  'request.rejected': ['group', 'epoch', 'reason'],
  'config.applied': [],
};

const ISO = {
  type: 'string',
  format: 'date-time',
  pattern: '^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d+)?Z$',
};

export function transitionEventJsonSchema(): Record<string, unknown> {
  return {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    $id: 'transition-event.schema.json',
    title: 'Failover Transition (EventBridge detail)',
    description:
      'The detail of an event with source "failover.controller" and detail-type "Failover Transition". Fields are only ever added within version 1.',
    type: 'object',
    properties: {
      version: { const: 1 },
      kind: { enum: ALERT_KINDS },
      severity: { enum: ['critical', 'warning', 'info'] },
      cluster: { type: 'string', minLength: 1, description: 'cluster name' },
      group: { type: 'string', minLength: 1, description: 'group name' },
      epoch: { type: 'integer', minimum: 0, description: 'group epoch after the transition' },
      node: {
        type: 'string',
        minLength: 1,
        description: 'the node concerned: new owner, fenced node, node blamed',
      },
      previousOwner: { type: 'string', minLength: 1, description: 'the owner before a change of owner' },
      instanceId: { type: 'string', pattern: '^i-[0-9a-f]+$', description: 'EC2 instance of node' },
      reason: { type: 'string', description: "why, in the controller's words" },
      message: { type: 'string', minLength: 1, description: 'one line for people' },
      at: { ...ISO, description: 'time of the transition (ISO 8601, UTC)' },
      startedAt: { ...ISO, description: 'failover.completed: when the failover started' },
      durationMs: { type: 'integer', minimum: 0, description: 'failover.completed: from startedAt to at' },
      region: { type: 'string', description: 'AWS region of the deployment' },
      account: { type: 'string', pattern: '^\\d{12}$', description: 'AWS account of the deployment' },
    },
    required: ['version', 'kind', 'severity', 'cluster', 'message', 'at'],
    additionalProperties: false,
    oneOf: ALERT_KINDS.map((kind) => ({
      title: kind,
      properties: { kind: { const: kind }, severity: { const: SEVERITY[kind] } },
      required: ['kind', ...REQUIRED_BY_KIND[kind]],
    })),
  };
}
