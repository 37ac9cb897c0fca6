#!/usr/bin/env node
// keepalived's notify script in the keepalived benchmark (bench/keepalived.ts): what a user of
// keepalived on EC2 writes in `notify_master` — point the VIP's route at this node's ENI in every
// route table (`aws ec2 replace-route`, one table after another) — with the AWS SDK for JavaScript
// in a fresh Node.js process instead of the AWS CLI (not installed here). Writes one line to the
// log per call: when the process started, when the SDK was loaded, when every route was replaced.
//
//   keepalived-notify.mjs NODE STATE   (environment: KA_LOG, KA_TABLES, KA_VIP, KA_ENI, AWS_*)
import { appendFileSync } from 'node:fs';

const started = Math.round(performance.timeOrigin);
const [node = '?', state = '?'] = process.argv.slice(2);
const log = process.env.KA_LOG;
const line = (text) => {
  if (log) appendFileSync(log, `${text}\n`);
};

if (state.toLowerCase() !== 'master') {
  line(`${Date.now()} ${node} ${state} started=${started}`);
  process.exit(0);
}
const { EC2Client, ReplaceRouteCommand } = await import('@aws-sdk/client-ec2');
const loaded = Date.now();
const ec2 = new EC2Client({ region: process.env.AWS_REGION ?? 'us-east-1', maxAttempts: 3 });
try {
  for (const table of (process.env.KA_TABLES ?? '').split(',').filter(Boolean)) {
    await ec2.send(
      new ReplaceRouteCommand({
        RouteTableId: table,
        DestinationCidrBlock: `${process.env.KA_VIP}/32`,
        NetworkInterfaceId: process.env.KA_ENI,
      }),
    );
  }
  line(`${Date.now()} ${node} switched started=${started} loaded=${loaded}`);
} catch (e) {
  line(`${Date.now()} ${node} failed ${String(e?.name ?? e)}: ${String(e?.message ?? '').slice(0, 200)}`);
  process.exit(1);
}
