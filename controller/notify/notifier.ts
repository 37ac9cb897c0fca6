/**
 * Transition announcements: one EventBridge event (machine-readable, documented detail schema) and
 * one SNS message (for people) per transition — each transition reaches the topic once. Reconcile
 * never waits on a failure here: the caller logs and drops publishing errors, so a failover is never
 * blocked by an alert.
 *
 * EventBridge event: source `failover.controller`, detail-type `Failover Transition`, detail: see
 * TransitionDetail in message.ts and schema/transition-event.schema.json. SNS: subject and text
 * from message.ts, message attributes `cluster`, `group`, `kind`, `severity` for subscription
 * filter policies.
 */
import { EventBridgeClient, PutEventsCommand } from '@aws-sdk/client-eventbridge';
import { PublishCommand, SNSClient } from '@aws-sdk/client-sns';
import { toDomainError } from '../../shared/aws/errors';
import type { Notifier } from '../../shared/core/ports';
import { type AwsOptions, clientConfig } from '../aws/clients';
import { type DeploymentContext, messageAttributes, subjectOf, textOf, transitionDetail } from './message';

export { subjectOf, textOf, transitionDetail } from './message';

export const EVENT_SOURCE = 'failover.controller';
export const EVENT_DETAIL_TYPE = 'Failover Transition';

export interface NotifierOptions extends DeploymentContext {
  /** Event bus name or ARN; undefined: no EventBridge event. */
  eventBus?: string;
  /** SNS topic ARN; undefined: no SNS message. */
  topicArn?: string;
}

export function createNotifier(options: NotifierOptions, aws: AwsOptions): Notifier {
  const events = options.eventBus ? new EventBridgeClient(clientConfig(aws)) : undefined;
  const sns = options.topicArn ? new SNSClient(clientConfig(aws)) : undefined;
  return {
    async publish(event) {
      const detail = transitionDetail(event, {
        ...(options.region ? { region: options.region } : {}),
        ...(options.account ? { account: options.account } : {}),
      });
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
                    Detail: JSON.stringify(detail),
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
                Subject: subjectOf(detail),
                Message: textOf(detail),
                MessageAttributes: messageAttributes(detail),
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
