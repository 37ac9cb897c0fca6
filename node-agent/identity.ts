/**
 * Who this agent is: `--cluster` and `--node`, or, without `--node`, the instance id from IMDSv2
 * looked up in the state table's instance index (written by `failoverctl apply`).
 */
import { AgentError, EXIT } from './errors';
import type { Imds } from './imds';
import { errorText } from './log';
import type { AgentStore } from './store';

/** Cluster and node from the flags, or from the instance id; throws AgentError naming the fix. */
export async function resolveIdentity(options: {
  cluster?: string;
  node?: string;
  store: AgentStore;
  imds: Imds | undefined;
}): Promise<{ cluster: string; node: string; instanceId?: string }> {
  const { cluster, node, store, imds } = options;
  if (node) {
    if (!cluster) {
      throw new AgentError(
        EXIT.usage,
        `--node ${node} needs --cluster NAME too (or give neither to find both from the instance id)`,
      );
    }
    return { cluster, node };
  }
  if (!imds) {
    throw new AgentError(
      EXIT.usage,
      'without --node the node is found from the instance id through IMDS, which is disabled (AWS_EC2_METADATA_DISABLED); pass --cluster NAME --node NAME',
    );
  }
  let instanceId: string;
  let arn: string;
  try {
    instanceId = await imds.instanceId();
    arn = await imds.instanceArn();
  } catch (e) {
    throw new AgentError(
      EXIT.failed,
      `cannot read the instance identity from IMDS at ${imds.endpoint} (${errorText(e)}); run on EC2 with IMDSv2 enabled, or pass --cluster NAME --node NAME`,
    );
  }
  const found = await store.findInstance(arn);
  if (!found) {
    throw new AgentError(
      EXIT.notFound,
      `instance ${instanceId} is not a node of any cluster in table ${store.table}; add it under nodes: (instanceId: ${instanceId}) in the cluster definition and run "failoverctl apply", or pass --cluster NAME --node NAME`,
    );
  }
  if (cluster && found.cluster !== cluster) {
    throw new AgentError(
      EXIT.notFound,
      `instance ${instanceId} is node ${found.node} of cluster ${found.cluster}, not of cluster ${cluster}; fix --cluster or the definition`,
    );
  }
  return { ...found, instanceId };
}
