/**
 * Installing the agent the AWS way, against the moto server: the deployment's install document (as
 * serverless.yml writes it, with CloudFormation's substitutions made) is created in the emulator,
 * and `failoverctl agent install` sends it to every instance of a cluster with its node's cluster
 * and name and the sums of a real release (npm run release:agent), then reports per instance.
 * moto checks no document parameter and runs nothing (every invocation reports Success at once): the
 * end state asserted is the command moto holds for each instance, and that every value sent matches
 * the document's own allowedPattern. `agent user-data` for Linux is checked by `sh -n`.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CreateDocumentCommand,
  DescribeDocumentCommand,
  ListCommandsCommand,
  SSMClient,
} from '@aws-sdk/client-ssm';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import type { Io } from '../../cli/context';
import { main } from '../../cli/main';
import { clientConfig } from '../../controller/aws/clients';
import { DynamoStore } from '../../controller/state/dynamo-store';
import { releaseAgent } from '../../scripts/agent-release';
import { parseClusterConfig } from '../../shared/config/load';
import { aws, uniqueName } from './support';

type DocParam = { type: string; default?: string; allowedPattern?: string };
type DocContent = {
  schemaVersion: string;
  parameters: Record<string, DocParam>;
  mainSteps: { action: string; name: string; inputs: Record<string, unknown> }[];
};

/** The install document of serverless.yml, with Sub/Ref made as CloudFormation would for this stage. */
function installDocument(stage: string, bucket: string): DocContent {
  const text = readFileSync(new URL('../../serverless.yml', import.meta.url), 'utf8');
  // Unknown tags (!Sub, !Ref, ...) are dropped by the parser, leaving their argument.
  const sls = parse(text, { logLevel: 'silent' }) as {
    resources: { Resources: Record<string, { Properties: { Content: DocContent } }> };
  };
  const content = structuredClone(sls.resources.Resources.AgentInstallDocument!.Properties.Content);
  const json = JSON.stringify(content)
    .replaceAll(`\${AWS::Region}`, 'us-east-1')
    .replaceAll(`\${AgentBucket}`, bucket)
    .replaceAll(`\${sls:stage}`, stage);
  const out = JSON.parse(json) as DocContent;
  out.parameters.table!.default = `failover-state-${stage}`;
  return out;
}

function io(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    env: {
      AWS_REGION: 'us-east-1',
      AWS_ENDPOINT_URL: aws().endpoint!,
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
    },
    now: () => Date.now(),
  };
}

describe('failoverctl agent (the install document on the emulator)', () => {
  const stage = uniqueName('s');
  const table = `failover-state-${stage}`;
  const bucket = `failover-agent-${stage}`;
  let releaseDir: string;
  let manifest: { version: string; linux: { sha256: string }; windows: { sha256: string } };
  let content: DocContent;
  let cluster: string;
  // The fixture's own calls wait longer than the product's 3 s per attempt: on a loaded machine
  // moto answers its first SSM and DynamoDB calls slowly (a beforeAll timed out at 3 s).
  const setup = { ...aws(), requestTimeoutMs: 20_000 };
  const ssm = new SSMClient(clientConfig(setup));

  beforeAll(async () => {
    releaseDir = mkdtempSync(join(tmpdir(), 'release-'));
    manifest = await releaseAgent({ outDir: releaseDir });
    content = installDocument(stage, bucket);
    // A slow first answer may be retried by the SDK after its per-call timeout: the document is then
    // already there, which is as good.
    await ssm
      .send(
        new CreateDocumentCommand({
          Name: `failover-agent-install-${stage}`,
          DocumentType: 'Command',
          DocumentFormat: 'JSON',
          Content: JSON.stringify(content),
        }),
      )
      .catch((e: Error) => {
        if (e.name !== 'DocumentAlreadyExists') throw e;
      });
    const store = new DynamoStore(table, setup);
    await store.createTable();
    cluster = uniqueName('c');
    await store.applyConfig(
      parseClusterConfig({
        cluster,
        region: 'us-east-1',
        nodes: [
          { name: 'node1', instanceId: 'i-0aaa1111aaaa1111a', az: 'us-east-1a' },
          { name: 'node2', instanceId: 'i-0bbb2222bbbb2222b', az: 'us-east-1b', platform: 'windows' },
        ],
        groups: [],
      }),
      { now: Date.now(), by: 'test' },
    );
  }, 120_000);

  it('the emulator takes the document: both platforms, typed parameters', async () => {
    const described = await ssm.send(
      new DescribeDocumentCommand({ Name: `failover-agent-install-${stage}` }),
    );
    expect(described.Document?.DocumentType).toBe('Command');
    expect(described.Document?.Parameters?.map((p) => p.Name).sort()).toEqual(
      ['cluster', 'node', 'sha256Linux', 'sha256Windows', 'table', 'version', 'watchdogSeconds'].sort(),
    );
    expect(content.mainSteps.map((s) => s.name)).toEqual([
      'downloadLinux',
      'installLinux',
      'downloadWindows',
      'installWindows',
    ]);
    const download = content.mainSteps[0]!.inputs as { sourceInfo: string };
    expect(JSON.parse(download.sourceInfo)).toEqual({
      path: `https://s3.us-east-1.amazonaws.com/${bucket}/agent/{{ version }}/failover-agent-{{ version }}-linux.tar.gz`,
    });
    // Every parameter reaching a shell or PowerShell is constrained.
    for (const [name, p] of Object.entries(content.parameters)) expect(p.allowedPattern, name).toBeTruthy();
  });

  it('install sends each node its cluster, name and the release sums, and reports per instance', async () => {
    const x = io();
    const code = await main(
      [
        '--table',
        table,
        'agent',
        'install',
        '--cluster',
        cluster,
        '--release',
        releaseDir,
        '--watchdog',
        '2',
        '--wait',
        '30',
      ],
      x,
    );
    const text = [...x.stdout, ...x.stderr].join('\n');
    expect(code, text).toBe(0);
    expect(text).toContain(
      `installing failover-agent ${manifest.version} with failover-agent-install-${stage} on 2 instances of cluster ${cluster}`,
    );
    expect(text).toMatch(/✓ node1 \(i-0aaa1111aaaa1111a, linux\): Success \(command [0-9a-f-]+\)/);
    expect(text).toMatch(/✓ node2 \(i-0bbb2222bbbb2222b, windows\): Success/);
    expect(text).toContain(`2 of 2 instances on failover-agent ${manifest.version}`);

    for (const [node, id, platform] of [
      ['node1', 'i-0aaa1111aaaa1111a', 'linux'],
      ['node2', 'i-0bbb2222bbbb2222b', 'windows'],
    ] as const) {
      const listed = await ssm.send(new ListCommandsCommand({ InstanceId: id }));
      const command = listed.Commands?.find((c) => c.DocumentName === `failover-agent-install-${stage}`);
      expect(command?.Parameters).toEqual({
        version: [manifest.version],
        sha256Linux: [manifest.linux.sha256],
        sha256Windows: [manifest.windows.sha256],
        cluster: [cluster],
        node: [node],
        table: [table],
        ...(platform === 'linux' ? { watchdogSeconds: ['2'] } : {}),
      });
      for (const [name, [value]] of Object.entries(command!.Parameters!)) {
        expect(new RegExp(content.parameters[name]!.allowedPattern!).test(value!), `${name}=${value}`).toBe(
          true,
        );
      }
    }
  });

  it('names a missing release, an unknown node and a table without a stage', async () => {
    const noRelease = io();
    expect(
      await main(
        ['--table', table, 'agent', 'install', '--cluster', cluster, '--release', '/nonexistent'],
        noRelease,
      ),
    ).toBe(2);
    expect(noRelease.stderr.join('\n')).toContain('cannot read /nonexistent/manifest.json');
    const badNode = io();
    expect(
      await main(
        [
          '--table',
          table,
          'agent',
          'install',
          '--cluster',
          cluster,
          '--release',
          releaseDir,
          '--node',
          'node9',
        ],
        badNode,
      ),
    ).toBe(3);
    expect(badNode.stderr.join('\n')).toContain('node node9 is not in cluster');
    const noStage = io();
    expect(
      await main(
        ['--table', 'mytable', 'agent', 'install', '--cluster', cluster, '--release', releaseDir],
        noStage,
      ),
    ).toBe(2);
    expect(noStage.stderr.join('\n')).toContain('pass --document');
  });

  it('user-data: a Linux script the shell accepts and a PowerShell block, with the release sum', async () => {
    const linux = io();
    expect(
      await main(
        [
          '--table',
          table,
          '--region',
          'us-east-1',
          'agent',
          'user-data',
          '--platform',
          'linux',
          '--bucket',
          bucket,
          '--release',
          releaseDir,
          '--cluster',
          cluster,
          '--node',
          'node1',
        ],
        linux,
      ),
    ).toBe(0);
    const script = linux.stdout.join('\n');
    expect(script).toContain(
      `echo '${manifest.linux.sha256}  failover-agent-${manifest.version}-linux.tar.gz' | sha256sum -c -`,
    );
    expect(script).toContain(
      `aws s3 cp 's3://${bucket}/agent/${manifest.version}/failover-agent-${manifest.version}-linux.tar.gz'`,
    );
    const file = join(releaseDir, 'user-data.sh');
    writeFileSync(file, script);
    expect(spawnSync('sh', ['-n', file]).status).toBe(0);
    const windows = io();
    expect(
      await main(
        [
          '--table',
          table,
          '--region',
          'us-east-1',
          'agent',
          'user-data',
          '--platform',
          'windows',
          '--bucket',
          bucket,
          '--release',
          releaseDir,
        ],
        windows,
      ),
    ).toBe(0);
    const ps = windows.stdout.join('\n');
    expect(ps.startsWith('<powershell>')).toBe(true);
    expect(ps).toContain(`-ne '${manifest.windows.sha256}'`);
    expect(ps).toContain(`-Table '${table}' -Region 'us-east-1'`);
  });
});
