/**
 * The acceptance run in the user's own AWS account (`npm run test:aws`): the stack deployed to a
 * throwaway stage with the Serverless Framework, the agents installed on two real instances by the
 * user data `failoverctl agent user-data` prints, and the owner crashed with a kernel panic sent
 * through SSM Run Command (with the caller's credentials: the deployment's role may not run shell
 * commands). Never run by CI; the emulator twin (emulator.ts) runs the rest of the code in `npm test`.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { CloudFormationClient, DescribeStacksCommand } from '@aws-sdk/client-cloudformation';
import { DeleteTableCommand, DynamoDBClient, UpdateTableCommand } from '@aws-sdk/client-dynamodb';
import { SendCommandCommand, SSMClient } from '@aws-sdk/client-ssm';
import type { AwsOptions } from '../../shared/aws/options';
import { imageOfParameter } from './images';
import type { Ledger } from './ledger';
import type { AcceptanceNode } from './network';
import type { Deployment, Platform } from './platform';
import { emptyAndDeleteBucket, s3Client } from './release-upload';

const REPO = path.resolve(import.meta.dirname, '..', '..');

/** Runs the Serverless Framework of the repository (osls), printing its output as it goes. */
function serverless(args: string[], say: (line: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(REPO, 'node_modules', '.bin', 'osls'), args, {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const line = (d: Buffer) => {
      const text = d.toString();
      tail = (tail + text).slice(-4000);
      for (const l of text.split('\n')) if (l.trim()) say(`    ${l.trimEnd()}`);
    };
    child.stdout.on('data', line);
    child.stderr.on('data', line);
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0
        ? resolve()
        : reject(new Error(`serverless ${args[0]} failed (exit ${code}): ${tail.trim()}`)),
    );
  });
}

export class LivePlatform implements Platform {
  readonly kind = 'aws' as const;
  readonly terminateTimeoutMs = 10 * 60_000;
  /** A fresh instance boots, installs Node.js 22 and the agent: a few minutes. */
  readonly agentWaitMs = 10 * 60_000;
  readonly aws: AwsOptions;
  readonly cliEnv: Record<string, string>;

  constructor(
    readonly region: string,
    private readonly say: (line: string) => void,
  ) {
    this.aws = { region };
    this.cliEnv = { AWS_REGION: region };
  }

  async deploy(stage: string, ledger: Ledger): Promise<Deployment> {
    const stack = `failover-controller-${stage}`;
    const args = ['--stage', stage, '--region', this.region];
    const cfn = new CloudFormationClient({ region: this.region });
    const dynamodb = new DynamoDBClient({ region: this.region });
    const s3 = s3Client(this.aws);
    // Recorded before the deploy: a deploy that fails half-way is removed all the same.
    const outputs: Record<string, string> = {};
    ledger.add(
      { kind: 'stack', id: stack, detail: 'with the state table and agent bucket it retains' },
      async () => {
        await serverless(['remove', ...args], this.say);
        // The stack keeps the table (DeletionPolicy Retain, deletion protection) and the versioned
        // bucket of agent releases on purpose; a throwaway stage removes them too.
        const table = outputs.StateTableName ?? `failover-state-${stage}`;
        try {
          await dynamodb.send(new UpdateTableCommand({ TableName: table, DeletionProtectionEnabled: false }));
          await dynamodb.send(new DeleteTableCommand({ TableName: table }));
        } catch (e) {
          if ((e as Error).name !== 'ResourceNotFoundException') throw e;
        }
        if (outputs.AgentBucketName) await emptyAndDeleteBucket(s3, outputs.AgentBucketName);
      },
    );
    this.say(`  npx serverless deploy ${args.join(' ')} (a few minutes)`);
    await serverless(['deploy', ...args], this.say);
    const described = (await cfn.send(new DescribeStacksCommand({ StackName: stack }))).Stacks?.[0];
    for (const o of described?.Outputs ?? [])
      if (o.OutputKey && o.OutputValue) outputs[o.OutputKey] = o.OutputValue;
    for (const key of ['StateTableName', 'AgentBucketName', 'AgentArtifactsReadPolicyArn'])
      if (!outputs[key]) throw new Error(`stack ${stack} has no output ${key}`);
    return {
      stage,
      table: outputs.StateTableName!,
      bucket: outputs.AgentBucketName!,
      managedTag: `failover-controller-${stage}`,
      nodePolicies: [
        'arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore',
        outputs.AgentArtifactsReadPolicyArn!,
      ],
    };
  }

  async image(): Promise<{ imageId: string; instanceType: string }> {
    return { imageId: await imageOfParameter(this.aws), instanceType: 't4g.micro' };
  }

  /** The instances install their agents from their user data. */
  async startAgents(): Promise<void> {}

  async crash(node: AcceptanceNode): Promise<number> {
    const ssm = new SSMClient({ region: this.region });
    // A kernel panic: no stop script, no final report, the watchdog-less worst case.
    const sent = await ssm.send(
      new SendCommandCommand({
        DocumentName: 'AWS-RunShellScript',
        InstanceIds: [node.instanceId],
        Comment: 'failover acceptance run: crash the owner',
        Parameters: { commands: ['echo 1 > /proc/sys/kernel/sysrq', 'echo c > /proc/sysrq-trigger'] },
      }),
    );
    this.say(
      `  sent a kernel panic to ${node.name} (${node.instanceId}), command ${sent.Command?.CommandId}`,
    );
    // The command reaches the node within about a second; the time counts from the send.
    return Date.now();
  }

  invocations(): undefined {
    return undefined;
  }

  async close(): Promise<void> {}
}
