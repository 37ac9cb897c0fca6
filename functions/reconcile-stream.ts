/**
 * DynamoDB stream: agent reports (changes, expired peers, leaving) and operator requests. The whole
 * batch is validated by handleStream (never trusted to be a batch); clusters whose reconcile fails
 * are returned as batch item failures (the mapping has ReportBatchItemFailures).
 */
import { handleStream } from '../controller/reconcile/entry';
import { reconcileHandler } from './runtime';

export const handler = reconcileHandler<unknown>(handleStream, 'batch-items');
