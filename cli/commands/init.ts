/**
 * `failoverctl init`: for local runs, where no deployment made them, create the state table
 * (on-demand, stream, TTL) and the guard's SSM documents (the shell one and its PowerShell variant
 * for Windows nodes, controller/resources/guard-document.ts): the exec driver sends nothing else.
 */
import { createAwsClients } from '../../controller/resources';
import {
  DEFAULT_AGENT_PATH_WINDOWS,
  ensureGuardDocument,
  LOCAL_GUARD_DOCUMENT,
  windowsGuardDocumentName,
} from '../../controller/resources/guard-document';
import { awsOptions, type GlobalFlags, type Io, openStore } from '../context';

/** Where install.sh puts the agent (serverless.yml param agentPath). */
const DEFAULT_AGENT_PATH = '/usr/local/bin/failover-agent';

export async function initCommand(io: Io, flags: GlobalFlags): Promise<number> {
  const store = openStore(io, flags, 'us-east-1');
  io.err(`creating state table ${store.table} (if missing)...`);
  const { created } = await store.createTable();
  io.out(
    created
      ? `created state table ${store.table}`
      : `state table ${store.table} already exists; nothing to do`,
  );
  const aws = awsOptions(io, flags);
  if (!aws.region) aws.region = 'us-east-1';
  const { ssm } = createAwsClients(aws);
  const linux = io.env.FAILOVER_SSM_DOCUMENT ?? LOCAL_GUARD_DOCUMENT;
  const documents = [
    { name: linux, agentPath: io.env.FAILOVER_AGENT_PATH ?? DEFAULT_AGENT_PATH, platform: 'linux' as const },
    {
      name: io.env.FAILOVER_SSM_DOCUMENT_WINDOWS ?? windowsGuardDocumentName(linux),
      agentPath: io.env.FAILOVER_AGENT_PATH_WINDOWS ?? DEFAULT_AGENT_PATH_WINDOWS,
      platform: 'windows' as const,
    },
  ];
  for (const d of documents) {
    const r = await ensureGuardDocument(ssm, d.name, d.agentPath, d.platform);
    io.out(
      r.created
        ? `created guard document ${d.name} (${d.platform}, agent ${d.agentPath})`
        : r.updated
          ? `updated guard document ${d.name} (${d.platform}, agent ${d.agentPath})`
          : `guard document ${d.name} is up to date; nothing to do`,
    );
  }
  return 0;
}
