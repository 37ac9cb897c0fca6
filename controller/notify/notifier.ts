/**
 * Transition announcements: one EventBridge event (machine-readable, documented detail schema) and
 * one short SNS message (for people) per transition. Reconcile never waits on a failure here: the
 * caller logs and drops publishing errors, so a failover is never blocked by an alert.
 *
 * EventBridge event: source `failover.controller`, detail-type `Failover Transition`, detail:
 *   { kind, cluster, group?, epoch?, message, at (ISO-8601), version: 1 }
 * where kind is one of failover.started | failover.completed | failover.failed | group.stopped |
 * monitor.error | monitor.warning | monitor.recovered | resource.restarted | node.fenced |
 * request.done | request.rejected | config.applied.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { toDomainError } from '../../shared/aws/errors';
import type { Notifier, TransitionEvent } from '../../shared/core/ports';
import { type AwsOptions, clientConfig } from '../aws/clients';

export const EVENT_SOURCE = 'failover.controller';
export const EVENT_DETAIL_TYPE = 'Failover Transition';

export interface NotifierOptions {
  /** Event bus name or ARN; undefined: no EventBridge event. */
  eventBus?: string;
  /** SNS topic ARN; undefined: no SNS message. */
  topicArn?: string;
}

export function transitionDetail(event: TransitionEvent) {
  return {
    version: 1,
    kind: event.kind,
    cluster: event.cluster,
    ...(event.group !== undefined ? { group: event.group } : {}),
    ...(event.epoch !== undefined ? { epoch: event.epoch } : {}),
    message: event.message,
    at: new Date(event.at).toISOString(),
  };
}

/** A one-line subject for people (SNS subjects are limited to 100 characters). */
export function subjectOf(event: TransitionEvent): string {
  return `[failover] ${event.kind} ${event.cluster}${event.group ? `/${event.group}` : ''}`.slice(0, 100);
}

export function createNotifier(options: NotifierOptions, aws: AwsOptions): Notifier {
  const events = options.eventBus ? new EventBridgeClient(clientConfig(aws)) : undefined;
  const sns = options.topicArn ? new SNSClient(clientConfig(aws)) : undefined;
  return {
    async publish(event) {
      const tasks: Promise<unknown>[] = [];
      if (events && options.eventBus) {
        tasks.push(
          events
            .send(
              new PutEventsCommand({
                Entries: [
                  {
                    Source: EVENT_SOURCE,
                    DetailType: EVENT_DETAIL_TYPE,
                    EventBusName: options.eventBus,
                    // No Time: EventBridge stamps the event; the transition's own time is in detail.at.
                    Detail: JSON.stringify(transitionDetail(event)),
                  },
                ],
              }),
            )
            .then((res) => {
              if ((res.FailedEntryCount ?? 0) > 0)
                throw new Error(
                  `PutEvents rejected the event: ${res.Entries?.[0]?.ErrorMessage ?? 'unknown'}`,
                );
            })
            .catch((e) => {
              throw toDomainError(e, {
                action: 'events:PutEvents',
                resource: `event bus ${options.eventBus}`,
              });
            }),
        );
      }
      if (sns && options.topicArn) {
        tasks.push(
          sns
            .send(
              new PublishCommand({
                TopicArn: options.topicArn,
                Subject: subjectOf(event),
                Message: `${event.message}\n\n${JSON.stringify(transitionDetail(event))}`,
              }),
            )
            .catch((e) => {
              throw toDomainError(e, { action: 'sns:Publish', resource: `topic ${options.topicArn}` });
            }),
        );
      }
      const results = await Promise.allSettled(tasks);
      const failed = results.find((r) => r.status === 'rejected');
      if (failed) throw (failed as PromiseRejectedResult).reason;
    },
  };
}
