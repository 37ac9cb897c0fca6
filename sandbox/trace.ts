/**
 * What the controller did, and when: a timeline the benchmark turns into a breakdown per failover
 * (detection, decision, demote, each entry point, application start) and a count of AWS calls.
 * Every hook wraps the real controller code from outside (SDK middleware, wrapped drivers): nothing
 * in shared/ knows it is being watched.
 */

import type { Cloud, ResourceDriver, ResourceRequest, StateStore } from '../shared/core/ports';
import { countSdkCalls } from '../testkit/sdk-calls';

export type TraceEvent =
  /** One invocation of the controller (a "Lambda invocation"): its trigger and what carried it. */
  | { kind: 'invoke'; at: number; trigger: string; detail: string }
  /** One resource driver call: `activate`/`deactivate` of a resource on a node. */
  | {
      kind: 'driver';
      at: number;
      end: number;
      type: string;
      resource: string;
      action: 'activate' | 'deactivate';
      node: string;
      ok: boolean;
    }
  /** An audit record the controller wrote (decisions, action outcomes). */
  | { kind: 'audit'; at: number; auditKind: string; message: string }
  /** One AWS API call of the controller. */
  | { kind: 'aws'; at: number; end: number; service: string; op: string; mutating: boolean };

/** AWS operations that change something (the rest only read). */
const READ_ONLY = /^(Describe|Get|List|BatchGet|Query|Scan)/;

export class ControllerTrace {
  readonly events: TraceEvent[] = [];

  /** Records every call made through an AWS SDK client (service name as given). */
  countCalls(client: unknown, service: string): void {
    countSdkCalls(client, service, {
      call: ({ op, at, end }) =>
        this.events.push({ kind: 'aws', at, end, service, op, mutating: !READ_ONLY.test(op) }),
    });
  }

  /** Wraps every resource driver of the cloud adapter (in place). */
  wrapDrivers(cloud: Cloud): void {
    for (const [type, driver] of Object.entries(cloud.resources) as [string, ResourceDriver][]) {
      const wrap =
        (action: 'activate' | 'deactivate') =>
        async (req: ResourceRequest): ReturnType<ResourceDriver['activate']> => {
          const at = Date.now();
          let ok = false;
          try {
            const out = await driver[action](req);
            ok = true;
            return out;
          } finally {
            this.events.push({
              kind: 'driver',
              at,
              end: Date.now(),
              type,
              resource: req.resource.name,
              action,
              node: req.node.name,
              ok,
            });
          }
        };
      cloud.resources[type as keyof Cloud['resources']] = {
        ...driver,
        activate: wrap('activate'),
        deactivate: wrap('deactivate'),
      };
    }
  }

  /** Records the audit records the controller writes (in place). */
  wrapAudit(store: StateStore): void {
    const append = store.appendAudit.bind(store);
    store.appendAudit = async (event) => {
      this.events.push({ kind: 'audit', at: Date.now(), auditKind: event.kind, message: event.message });
      return append(event);
    };
  }

  invoked(trigger: string, detail: string): void {
    this.events.push({ kind: 'invoke', at: Date.now(), trigger, detail });
  }

  /** Events that started in [from, to]. */
  between(from: number, to = Number.POSITIVE_INFINITY): TraceEvent[] {
    return this.events.filter((e) => e.at >= from && e.at <= to);
  }
}
