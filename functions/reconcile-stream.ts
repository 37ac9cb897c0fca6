/** DynamoDB stream: agent reports (changes, expired peers, leaving) and operator requests. */
import type { DynamoDBStreamEvent } from 'aws-lambda';
import { handleStream } from '../controller/reconcile/entry';
import { reconcileHandler } from './runtime';

export const handler = reconcileHandler<DynamoDBStreamEvent>((deps, event, ctx) =>
  handleStream(deps, event.Records ?? [], ctx),
);
