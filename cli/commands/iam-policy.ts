/** `failoverctl iam-policy --role controller|agent`: least-privilege policies from cluster definitions. */

import { InvalidRequestError } from '../../shared/base/errors';
import type { ClusterConfig } from '../../shared/config/load';
import { resolveTableName } from '../../shared/table/keys';
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';
import {
  agentPolicy,
  controllerPolicy,
  DEFAULT_GUARD_DOCUMENT,
  MANAGED_POLICY_MAX_CHARS,
  type PolicyDocument,
  policySize,
} from '../iam/policies';
import { loadDefinitionFile } from './validate';

export async function iamPolicyCommand(
  io: Io,
  flags: GlobalFlags,
  options: {
    role: string;
    file?: string[];
    cluster?: string;
    account?: string;
    eventBus?: string;
    topicArn?: string;
    document?: string;
    windowsDocument?: string;
    agentBucket?: string;
  },
): Promise<number> {
  if (options.role !== 'controller' && options.role !== 'agent')
    throw new InvalidRequestError(`--role must be controller or agent (got "${options.role}")`);
  if (options.agentBucket !== undefined && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(options.agentBucket))
    throw new InvalidRequestError(
      `--agent-bucket "${options.agentBucket}" is not a bucket name (the stack output AgentBucketName)`,
    );
  if (options.account !== undefined && !/^\d{12}$/.test(options.account))
    throw new InvalidRequestError(`--account must be a 12-digit AWS account id (got "${options.account}")`);
  let configs: ClusterConfig[];
  if (options.file?.length) configs = await Promise.all(options.file.map(loadDefinitionFile));
  else configs = [(await loadCluster(openStore(io, flags), options.cluster)).config];
  const ctx = {
    table: resolveTableName(flags.table, io.env),
    ...(options.account ? { account: options.account } : {}),
    ...(options.eventBus ? { eventBus: options.eventBus } : {}),
    ...(options.topicArn ? { topicArn: options.topicArn } : {}),
    document: options.document ?? io.env.FAILOVER_SSM_DOCUMENT ?? DEFAULT_GUARD_DOCUMENT,
    ...((options.windowsDocument ?? io.env.FAILOVER_SSM_DOCUMENT_WINDOWS)
      ? { windowsDocument: options.windowsDocument ?? io.env.FAILOVER_SSM_DOCUMENT_WINDOWS }
      : {}),
    ...(options.agentBucket ? { agentBucket: options.agentBucket } : {}),
  };
  const doc: PolicyDocument =
    options.role === 'controller' ? controllerPolicy(configs, ctx) : agentPolicy(configs, ctx);
  io.out(JSON.stringify(doc, null, 2));
  const size = policySize(doc);
  io.err(
    `note: ${size} of the ${MANAGED_POLICY_MAX_CHARS} characters of a managed policy${size > MANAGED_POLICY_MAX_CHARS ? ': too large; split the clusters over several roles' : ''}`,
  );
  if (!options.account && !configs.some((c) => c.account))
    io.err('note: no --account given and no account in the definitions; ARNs use * for the account');
  return 0;
}
