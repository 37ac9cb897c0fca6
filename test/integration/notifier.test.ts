/**
 * Transition announcements on the emulator: the EventBridge event (with its documented detail) and
 * the SNS message (a sentence for people, attributes for filter policies), each delivered to an SQS
 * queue subscribed to them; and a publishing failure that
 * must not be hidden from the caller (reconcile logs and drops it, never blocking a failover).
 */
import {
  CreateEventBusCommand,
  EventBridgeClient,
  PutRuleCommand,
  PutTargetsCommand,
} from '@aws-sdk/client-eventbridge';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { describe, expect, it } from 'vitest';
import { clientConfig } from '../../controller/aws/clients';
import { createNotifier, EVENT_DETAIL_TYPE, EVENT_SOURCE } from '../../controller/notify/notifier';
import { aws, uniqueName } from './support';

async function queue(sqs: SQSClient, name: string) {
  const url = (await sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] })))
    .Attributes!.QueueArn!;
  return { url, arn };
}

async function receive(sqs: SQSClient, url: string): Promise<string[]> {
  const out = await sqs.send(
    new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }),
  );
  return (out.Messages ?? []).map((m) => m.Body ?? '');
}

describe('transition announcements', () => {
  it('puts the event on the bus and the short message on the topic', async () => {
    const config = clientConfig(aws());
    const sqs = new SQSClient(config);
    const events = new EventBridgeClient(config);
    const sns = new SNSClient(config);
    const bus = uniqueName('failover');
    await events.send(new CreateEventBusCommand({ Name: bus }));
    const busQueue = await queue(sqs, uniqueName('bus'));
    await events.send(
      new PutRuleCommand({
        Name: 'transitions',
        EventBusName: bus,
        EventPattern: JSON.stringify({ source: [EVENT_SOURCE] }),
      }),
    );
    await events.send(
      new PutTargetsCommand({
        Rule: 'transitions',
        EventBusName: bus,
        Targets: [{ Id: 'q', Arn: busQueue.arn }],
      }),
    );
    const topicArn = (await sns.send(new CreateTopicCommand({ Name: uniqueName('alerts') }))).TopicArn!;
    const topicQueue = await queue(sqs, uniqueName('topic'));
    await sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: topicQueue.arn }));

    // Operators who only want critical alerts filter on the message attributes.
    const criticalQueue = await queue(sqs, uniqueName('critical'));
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: criticalQueue.arn,
        Attributes: { FilterPolicy: JSON.stringify({ severity: ['critical'] }) },
      }),
    );

    const notifier = createNotifier(
      { eventBus: bus, topicArn, region: 'eu-west-1', account: '123456789012' },
      aws(),
    );
    const at = Date.UTC(2026, 10, 23, 12, 0, 0);
    await notifier.publish({
      kind: 'failover.completed',
      cluster: 'orders',
      group: 'db',
      epoch: 7,
      message: 'group db is online on node2 (epoch 7)',
      at,
      node: 'node2',
      previousOwner: 'node1',
      instanceId: 'i-0bbb',
      reason: "node1's lease expired",
      startedAt: at - 3_900,
    });

    const [event] = (await receive(sqs, busQueue.url)).map((b) => JSON.parse(b));
    expect(event).toMatchObject({ source: EVENT_SOURCE, 'detail-type': EVENT_DETAIL_TYPE });
    expect(event.detail).toEqual({
      version: 1,
      kind: 'failover.completed',
      severity: 'info',
      cluster: 'orders',
      group: 'db',
      epoch: 7,
      node: 'node2',
      previousOwner: 'node1',
      instanceId: 'i-0bbb',
      reason: "node1's lease expired",
      message: 'group db is online on node2 (epoch 7)',
      at: '2026-11-23T12:00:00.000Z',
      startedAt: '2026-11-23T11:59:56.100Z',
      durationMs: 3900,
      region: 'eu-west-1',
      account: '123456789012',
    });
    // Once on the topic, as a sentence for people, with attributes for subscription filters.
    const notes = (await receive(sqs, topicQueue.url)).map((b) => JSON.parse(b));
    expect(notes).toHaveLength(1);
    const [note] = notes;
    expect(note.Subject).toBe('[failover] INFO orders/db: online on node2');
    expect(note.Message).toMatch(
      /^Group db of cluster orders is online on node2 \(instance i-0bbb\) since 2026-11-23 12:00:00 UTC, 3\.9 s after the failover started\.\n\nWhat to do: Find out why node1 failed/,
    );
    expect(note.Message).toMatch(/\nRegion: eu-west-1\nAccount: 123456789012\n/);
    expect(note.Message).not.toMatch(/[{}]/);
    expect(note.MessageAttributes).toMatchObject({
      cluster: { Type: 'String', Value: 'orders' },
      group: { Type: 'String', Value: 'db' },
      kind: { Type: 'String', Value: 'failover.completed' },
      severity: { Type: 'String', Value: 'info' },
    });
    expect(await receive(sqs, criticalQueue.url)).toEqual([]);

    await notifier.publish({
      kind: 'failover.failed',
      cluster: 'orders',
      group: 'db',
      epoch: 8,
      message: 'group db cannot run: no eligible node',
      reason: 'node1 is silent; node2 is isolated',
      at,
    });
    const [critical] = (await receive(sqs, criticalQueue.url)).map((b) => JSON.parse(b));
    expect(critical.Subject).toBe('[failover] CRITICAL orders/db: FAILED');
    expect(critical.Message).toMatch(
      /^Group db of cluster orders is not running: node1 is silent; node2 is isolated/,
    );
    expect(critical.Message).toMatch(/What to do: Run "failoverctl status --cluster orders"/);
  });

  it('reports a publishing failure with the action and the target', async () => {
    const notifier = createNotifier({ topicArn: 'arn:aws:sns:us-east-1:123456789012:no-such-topic' }, aws());
    const error = await notifier
      .publish({ kind: 'monitor.error', cluster: 'c', message: 'x', at: 0 })
      .catch((e) => e);
    expect(error.message).toMatch(/sns:Publish.*no-such-topic|no-such-topic/);
  });
});
