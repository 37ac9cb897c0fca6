/** EventBridge: AWS Health events about EC2 (instances and zones). */
import { handleEventBridge } from '../controller/reconcile/entry';
import { reconcileHandler } from './runtime';

export const handler = reconcileHandler(handleEventBridge);
