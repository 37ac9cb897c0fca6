/** EventBridge rate(1 minute): reconcile every cluster (the safety net behind all other triggers). */
import { handleEventBridge } from '../controller/reconcile/entry';
import { reconcileHandler } from './runtime';

export const handler = reconcileHandler(handleEventBridge);
