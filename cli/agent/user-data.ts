/**
 * A user-data snippet that installs the agent on a new instance at its first boot, from the
 * deployment's bucket, with the release's sum checked. With the deployment's State Manager
 * association (agentVersion), a new instance tagged failover:cluster needs none: SSM installs the
 * agent once the instance registers. Pure; `failoverctl agent user-data` prints it.
 */
import { psQuote } from '../../shared/base/powershell';
import { type AgentRelease, releaseFiles } from './release';

export interface UserDataOptions {
  platform: 'linux' | 'windows';
  bucket: string;
  region: string;
  table: string;
  release: AgentRelease;
  cluster?: string;
  node?: string;
}

const shQuote = (w: string) => `'${w.replace(/'/g, `'\\''`)}'`;

/** The snippet for the instance's user data (a shell script, or a <powershell> block). */
export function agentUserData(o: UserDataOptions): string {
  const { linux, windows, keyPrefix } = releaseFiles(o.release.version);
  const s3 = (file: string) => `s3://${o.bucket}/${keyPrefix}${file}`;
  if (o.platform === 'linux') {
    const args = [
      '--table',
      o.table,
      '--region',
      o.region,
      ...(o.cluster ? ['--cluster', o.cluster] : []),
      ...(o.node ? ['--node', o.node] : []),
    ];
    return [
      '#!/bin/sh',
      `# failover-agent ${o.release.version} from ${s3(linux)} (failoverctl agent user-data).`,
      "# Needs the AWS CLI (Amazon Linux has it) and an instance profile with the deployment's",
      '# AgentArtifactsReadPolicy and the agent policy (failoverctl iam-policy --role agent).',
      'set -eu',
      'if ! command -v node-22 >/dev/null 2>&1 && command -v dnf >/dev/null 2>&1; then dnf install -y nodejs22; fi',
      'dir=$(mktemp -d)',
      'cd "$dir"',
      `aws s3 cp ${shQuote(s3(linux))} ${shQuote(linux)} --region ${shQuote(o.region)}`,
      `echo ${shQuote(`${o.release.sha256Linux}  ${linux}`)} | sha256sum -c -`,
      `tar xzf ${shQuote(linux)}`,
      `sh failover-agent-${o.release.version}/install.sh --bundle "$dir/failover-agent-${o.release.version}/failover-agent.mjs" ${args.map(shQuote).join(' ')}`,
      '',
    ].join('\n');
  }
  const params = [
    `-Table ${psQuote(o.table)}`,
    `-Region ${psQuote(o.region)}`,
    ...(o.cluster ? [`-Cluster ${psQuote(o.cluster)}`] : []),
    ...(o.node ? [`-Node ${psQuote(o.node)}`] : []),
  ];
  return [
    '<powershell>',
    `# failover-agent ${o.release.version} from ${s3(windows)} (failoverctl agent user-data).`,
    '# Needs Node.js 22 LTS in the image, AWS Tools for PowerShell (on AWS Windows AMIs), and an',
    "# instance profile with the deployment's AgentArtifactsReadPolicy and the agent policy.",
    "$ErrorActionPreference = 'Stop'",
    "$dir = Join-Path $env:TEMP 'failover-agent-install'",
    'New-Item -ItemType Directory -Force -Path $dir | Out-Null',
    `$zip = Join-Path $dir ${psQuote(windows)}`,
    `Read-S3Object -BucketName ${psQuote(o.bucket)} -Key ${psQuote(`${keyPrefix}${windows}`)} -File $zip -Region ${psQuote(o.region)} | Out-Null`,
    `if ((Get-FileHash -Algorithm SHA256 -LiteralPath $zip).Hash.ToLower() -ne ${psQuote(o.release.sha256Windows)}) { throw "$zip does not match its SHA-256; nothing installed" }`,
    'Expand-Archive -LiteralPath $zip -DestinationPath $dir -Force',
    `& (Join-Path $dir ${psQuote(`failover-agent-${o.release.version}\\install.ps1`)}) ${params.join(' ')}`,
    '</powershell>',
    '',
  ].join('\r\n');
}
