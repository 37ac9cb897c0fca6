/**
 * `npm run test:aws`: the acceptance run in your own AWS account. Deploys the stack to a throwaway
 * stage, creates a VPC with two t4g.micro instances in two Availability Zones that install the agent
 * from their user data, applies a floating-IP cluster, crashes the owner with a kernel panic,
 * measures the failover through the deployed Lambda functions, removes everything and prints what
 * it created and what the run cost (about 15 minutes, about $0.01). Skipped (exit 0) without AWS
 * credentials; never run by CI.
 *
 *   npm run test:aws [-- --region eu-west-1] [--stage at1] [--keep]
 *   npm run test:aws -- --emulator     # the same run on the local emulator (npm test runs it)
 *   npm run test:aws -- --json FILE    # also write the result (failover times, resources, cost) as JSON
 *
 * Exit code: 0 when the failover happened and everything was removed again; 1 otherwise.
 */
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { GetCallerIdentityCommand, STSClient } from '@aws-sdk/client-sts';
import { EmulatorPlatform } from './acceptance/emulator';
import { describe } from './acceptance/ledger';
import { LivePlatform } from './acceptance/live';
import type { Platform } from './acceptance/platform';
import { type AcceptanceResult, runAcceptance } from './acceptance/run';

const { values } = parseArgs({
  options: {
    region: { type: 'string' },
    stage: { type: 'string' },
    keep: { type: 'boolean', default: false },
    emulator: { type: 'boolean', default: false },
    json: { type: 'string' },
  },
});
if (values.stage !== undefined && !/^[a-z][a-z0-9]{1,11}$/.test(values.stage)) {
  console.error(
    `--stage "${values.stage}": use 2-12 lowercase letters and digits, starting with a letter (e.g. at1)`,
  );
  process.exit(2);
}
const started = Date.now();
const say = (line: string) =>
  console.log(`${((Date.now() - started) / 1000).toFixed(1).padStart(7)}s ${line}`);

/** Prints the summary and writes it as JSON where asked. */
function report(r: AcceptanceResult, kind: 'aws' | 'emulator'): void {
  printSummary(r, kind);
  if (values.json) writeFileSync(values.json, `${JSON.stringify({ kind, ...r }, null, 2)}\n`);
}

/** Prints the summary: the failover, what was created and removed, the cost. */
function printSummary(r: AcceptanceResult, kind: 'aws' | 'emulator', print = console.log): void {
  print('');
  print(
    `acceptance run, stage ${r.stage}, ${kind === 'aws' ? 'AWS' : 'emulator'}: ${r.ok ? 'PASSED' : `FAILED (${r.error})`}`,
  );
  if (r.failover) {
    const f = r.failover;
    print(
      `  failover ${f.from} → ${f.to}: VIP route switched ${(f.routeSwitchedMs / 1000).toFixed(2)} s after the crash, record Online after ${(f.onlineMs / 1000).toFixed(2)} s${f.fromLastRenewalMs === undefined ? '' : `; ${(f.fromLastRenewalMs / 1000).toFixed(2)} s after the last renewal (lease ${f.leaseMs / 1000} s)`}`,
    );
  }
  if (r.invocations)
    print(
      `  Lambda invocations: ${Object.entries(r.invocations)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ')}`,
    );
  print(`  created (${r.created.length}):`);
  for (const c of r.created) print(`    ${describe(c)}`);
  if (r.teardown) {
    print(`  removed ${r.teardown.removed.length} of ${r.created.length}`);
    for (const f of r.teardown.failed)
      print(`    LEFT BEHIND, remove by hand: ${describe(f.resource)}: ${f.error}`);
  }
  print(
    `  cost of this run${kind === 'emulator' ? ' had it run on AWS' : ''} (${(r.elapsedMs / 60_000).toFixed(1)} min): $${r.cost.usd.toFixed(4)}`,
  );
  for (const l of r.cost.lines) print(`    ${l}`);
}

/** One run on the platform, with the options given, reported. */
async function run(platform: Platform): Promise<AcceptanceResult> {
  const r = await runAcceptance({
    platform,
    say,
    keep: values.keep,
    ...(values.stage ? { stage: values.stage } : {}),
  });
  report(r, platform.kind);
  return r;
}

async function main(): Promise<number> {
  if (values.emulator) {
    const platform = new EmulatorPlatform({ say });
    await platform.open();
    try {
      const r = await run(platform);
      if (r.ok) platform.removeWorkDir();
      else console.log(`  logs of the agents and functions: ${platform.workDir}`);
      return r.ok ? 0 : 1;
    } finally {
      await platform.shutdown();
    }
  }
  const region = values.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? 'us-east-1';
  let account: string | undefined;
  try {
    account = (await new STSClient({ region }).send(new GetCallerIdentityCommand({}))).Account;
  } catch (e) {
    console.log(
      `test:aws skipped: no usable AWS credentials (${(e as Error).message.split('\n')[0]}). Configure a profile or AWS_ACCESS_KEY_ID to run it in your account; npm test runs the same steps on the emulator.`,
    );
    return 0;
  }
  say(
    `account ${account}, region ${region}: deploying a throwaway stage, 2 t4g.micro instances, a VPC; about 15 minutes and $0.01; everything is removed at the end`,
  );
  const r = await run(new LivePlatform(region, say));
  return r.ok ? 0 : 1;
}

process.exitCode = await main();
