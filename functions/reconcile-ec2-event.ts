/** EventBridge: EC2 instance state changes, Spot interruption warnings, rebalance recommendations. */
import { handleEventBridge } from '../controller/reconcile/entry';
import { reconcileHandler } from './runtime';

export const handler = reconcileHandler(handleEventBridge);
