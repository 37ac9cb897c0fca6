/**
 * `failoverctl agent install`: installs or upgrades the agent on a cluster's instances through the
 * deployment's SSM install document (serverless.yml AgentInstallDocument), one command per node
 * with its cluster and name, and reports per instance. `failoverctl agent user-data`: the snippet
 * for new instances.
 */
import { GetCommandInvocationCommand, SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import { clientConfig } from '../../controller/aws/clients';
import { toDomainError } from '../../shared/aws/errors';
import { InvalidRequestError, NotFoundError } from '../../shared/base/errors';
import type { NodeConfig } from '../../shared/config/schema';
import { resolveTableName } from '../../shared/table/keys';
import { installDocumentFor, loadRelease } from '../agent/release';
import { agentUserData } from '../agent/user-data';
import { loadCluster } from '../cluster';
import { awsOptions, type GlobalFlags, type Io, openStore } from '../context';
import { CLI_VERSION } from '../version';

export interface ReleaseFlags {
  release?: string;
  version?: string;
  sha256Linux?: string;
  sha256Windows?: string;
}

export interface AgentInstallOptions extends ReleaseFlags {
  cluster?: string;
  node?: string[];
  document?: string;
  watchdog?: string;
  /** Seconds to wait for every instance. */
  wait: number;
  /** Poll interval (tests). */
  pollMs?: number;
}

const TERMINAL = new Set([
  'Success',
  'Cancelled',
  'TimedOut',
  'Failed',
  'DeliveryTimedOut',
  'ExecutionTimedOut',
  'Undeliverable',
  'Terminated',
  'InvalidPlatform',
  'AccessDenied',
]);

/** One instance's outcome. */
export interface InstallOutcome {
  node: string;
  instanceId: string;
  platform: string;
  commandId?: string;
  status: string;
  output: string;
}

const defaultReleaseDir = () => `dist/release/${CLI_VERSION.replace(/-dev$/, '')}`;

function releaseOptions(o: ReleaseFlags) {
  return {
    defaultDir: defaultReleaseDir(),
    ...(o.release ? { release: o.release } : {}),
    ...(o.version ? { version: o.version } : {}),
    ...(o.sha256Linux ? { sha256Linux: o.sha256Linux } : {}),
    ...(o.sha256Windows ? { sha256Windows: o.sha256Windows } : {}),
  };
}

function tail(text: string | undefined, lines = 6): string {
  return (text ?? '').trim().split('\n').slice(-lines).join('\n');
}

export async function agentInstallCommand(
  io: Io,
  flags: GlobalFlags,
  o: AgentInstallOptions,
): Promise<number> {
  const table = resolveTableName(flags.table, io.env);
  const document = o.document ?? installDocumentFor(table);
  if (!document)
    throw new InvalidRequestError(
      `table ${table} is not named failover-state-<stage>, so the install document's name is unknown: pass --document (the stack output AgentInstallDocumentName)`,
    );
  if (o.watchdog !== undefined && !/^[1-9][0-9]{0,2}$/.test(o.watchdog))
    throw new InvalidRequestError(
      `--watchdog takes whole seconds (softdog soft_margin), e.g. --watchdog 2; got "${o.watchdog}"`,
    );
  const release = await loadRelease(releaseOptions(o));
  const stored = await loadCluster(openStore(io, flags), o.cluster);
  const config = stored.config;
  let targets: NodeConfig[] = config.nodes;
  if (o.node && o.node.length > 0) {
    for (const n of o.node)
      if (!config.nodes.some((x) => x.name === n))
        throw new NotFoundError(
          'NODE_NOT_FOUND',
          `node ${n} is not in cluster ${config.cluster}; its nodes: ${config.nodes.map((x) => x.name).join(', ')}`,
        );
    targets = config.nodes.filter((n) => o.node!.includes(n.name));
  }
  const options = awsOptions(io, flags);
  if (!options.region) options.region = config.region;
  const ssm = new SSMClient(clientConfig(options));
  io.out(
    `installing failover-agent ${release.version} with ${document} on ${targets.length} instance${targets.length === 1 ? '' : 's'} of cluster ${config.cluster}`,
  );
  const outcomes: InstallOutcome[] = await Promise.all(
    targets.map(async (node): Promise<InstallOutcome> => {
      const base = { node: node.name, instanceId: node.instanceId, platform: node.platform };
      const parameters: Record<string, string[]> = {
        version: [release.version],
        sha256Linux: [release.sha256Linux],
        sha256Windows: [release.sha256Windows],
        cluster: [config.cluster],
        node: [node.name],
        table: [table],
        ...(o.watchdog && node.platform === 'linux' ? { watchdogSeconds: [o.watchdog] } : {}),
      };
      let commandId: string;
      try {
        const sent = await ssm.send(
          new SendCommandCommand({
            DocumentName: document,
            InstanceIds: [node.instanceId],
            Parameters: parameters,
            Comment: `failover-agent ${release.version} on ${config.cluster}/${node.name}`.slice(0, 100),
            TimeoutSeconds: 600,
          }),
        );
        commandId = sent.Command?.CommandId ?? '';
      } catch (e) {
        const err = toDomainError(e, {
          action: 'ssm:SendCommand',
          resource: `document ${document} on ${node.instanceId}`,
        });
        return { ...base, status: 'NotSent', output: err.message };
      }
      const deadline = io.now() + o.wait * 1000;
      for (;;) {
        await new Promise((r) => setTimeout(r, o.pollMs ?? 1000));
        try {
          const inv = await ssm.send(
            new GetCommandInvocationCommand({ CommandId: commandId, InstanceId: node.instanceId }),
          );
          if (inv.Status && TERMINAL.has(inv.Status)) {
            return {
              ...base,
              commandId,
              status: inv.Status,
              output: tail(
                inv.Status === 'Success'
                  ? inv.StandardOutputContent
                  : inv.StandardErrorContent || inv.StandardOutputContent,
              ),
            };
          }
        } catch (e) {
          const code = (e as { name?: string }).name;
          if (code !== 'InvocationDoesNotExist' && code !== 'InvalidCommandId') {
            return { ...base, commandId, status: 'Unknown', output: (e as Error).message };
          }
        }
        if (io.now() > deadline)
          return {
            ...base,
            commandId,
            status: 'StillRunning',
            output: `not done after ${o.wait} s: aws ssm list-command-invocations --command-id ${commandId} --details`,
          };
      }
    }),
  );
  for (const r of outcomes) {
    io.out(
      `  ${r.status === 'Success' ? '✓' : '✗'} ${r.node} (${r.instanceId}, ${r.platform}): ${r.status}${r.commandId ? ` (command ${r.commandId})` : ''}`,
    );
    for (const line of r.output.split('\n').filter(Boolean)) io.out(`      ${line}`);
  }
  const failed = outcomes.filter((r) => r.status !== 'Success').length;
  io.out(`${outcomes.length - failed} of ${outcomes.length} instances on failover-agent ${release.version}`);
  return failed === 0 ? 0 : 1;
}

export interface AgentUserDataOptions extends ReleaseFlags {
  platform: string;
  bucket: string;
  region?: string;
  cluster?: string;
  node?: string;
}

export async function agentUserDataCommand(
  io: Io,
  flags: GlobalFlags,
  o: AgentUserDataOptions,
): Promise<number> {
  if (o.platform !== 'linux' && o.platform !== 'windows')
    throw new InvalidRequestError(`--platform must be linux or windows, got "${o.platform}"`);
  if (!/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(o.bucket))
    throw new InvalidRequestError(
      `--bucket "${o.bucket}" is not a bucket name (the stack output AgentBucketName)`,
    );
  if (o.node && !o.cluster)
    throw new InvalidRequestError(
      '--node needs --cluster (or give neither: the agent finds both from the instance id)',
    );
  const region = o.region ?? flags.region ?? io.env.AWS_REGION;
  if (!region) throw new InvalidRequestError("no region: pass --region (the deployment's) or set AWS_REGION");
  const release = await loadRelease(releaseOptions(o));
  io.out(
    agentUserData({
      platform: o.platform,
      bucket: o.bucket,
      region,
      table: resolveTableName(flags.table, io.env),
      release,
      ...(o.cluster ? { cluster: o.cluster } : {}),
      ...(o.node ? { node: o.node } : {}),
    }).trimEnd(),
  );
  return 0;
}
