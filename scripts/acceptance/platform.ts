/**
 * Where an acceptance run happens. Everything the two places share (the network, the release
 * upload, the definition, the measurement, the teardown) is in run.ts; a platform supplies only
 * what differs: how the controller is deployed (CloudFormation through the Serverless Framework, or
 * `failoverctl init` and the packaged Lambda bundles run beside the emulator), how the agents get on
 * the nodes (user data on real instances, or local agent processes standing in for the emulator's
 * instances) and how a node crashes (a kernel panic, or SIGKILL).
 */
import type { AwsOptions } from '../../shared/aws/options';
import type { Ledger } from './ledger';
import type { AcceptanceNode } from './network';

/** What the deployment created that the run needs. */
export interface Deployment {
  stage: string;
  table: string;
  /** The agent releases' bucket (stack output AgentBucketName). */
  bucket: string;
  /** The deployment's failover:managed tag value. */
  managedTag: string;
  /** Managed policies the nodes' role needs besides the agent policy. */
  nodePolicies: string[];
}

/** The agent release the run built (scripts/agent-release.ts). */
export interface Release {
  dir: string;
  version: string;
  linuxArchive: string;
}

export interface Platform {
  readonly kind: 'aws' | 'emulator';
  readonly region: string;
  /** SDK options of the run's own calls (the emulator's endpoint there). */
  readonly aws: AwsOptions;
  /** Environment of the failoverctl processes the run starts. */
  readonly cliEnv: Record<string, string>;
  /** Deploys the controller for `stage`; what it creates goes into the ledger. */
  deploy(stage: string, ledger: Ledger): Promise<Deployment>;
  /** The image and instance type of the nodes. */
  image(): Promise<{ imageId: string; instanceType: string }>;
  /** How long a terminated instance may take to be gone. */
  readonly terminateTimeoutMs: number;
  /** How long the agents may take to report (a real node boots and installs Node.js first). */
  readonly agentWaitMs: number;
  /** Starts the agents where the instances cannot run them themselves (the emulator). */
  startAgents(
    d: Deployment,
    cluster: string,
    nodes: readonly AcceptanceNode[],
    release: Release,
  ): Promise<void>;
  /** Crashes a node without warning (no stop script, no final report); returns when it was done. */
  crash(node: AcceptanceNode): Promise<number>;
  /** What the controller did, where the platform can count it (invocations of each function). */
  invocations(): Record<string, number> | undefined;
  /** Stops what the platform runs locally (controller bundles, agents). */
  close(): Promise<void>;
}
