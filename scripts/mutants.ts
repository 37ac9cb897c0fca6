/**
 * `npm run mutants`: deliberate safety bugs in production code, applied one at a time to a copy of
 * the repository, each run against the property suite (the random fault schedules and the findings'
 * scenarios of test/property, on the shipped agent core and the real reconcile code), or, for the
 * node agent's process-level code (lock file, guard, local stops), against the agent tests that run
 * it as real processes on moto. A mutant the suite does not catch is a hole in the safety evidence. Prints each mutant with killed / survived
 * and what killed it, then `killed K/N`; exits 1 unless every mutant is killed.
 *
 *   npm run mutants                       every mutant, FAILOVER_PROPERTY_RUNS schedules each (150)
 *   npm run mutants -- --only NAME[,NAME] some of them
 *   npm run mutants -- --list             the list, without running
 *   npm run mutants -- --jobs 2           copies run side by side (default: 2, this machine's cores)
 *
 * Each mutant is an exact text replacement; one that no longer matches its file (the code moved on)
 * fails the run rather than pass silently.
 */
import { spawn } from 'node:child_process';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';

interface Mutant {
  name: string;
  /** The safety rule it breaks, in a sentence. */
  breaks: string;
  file: string;
  find: string;
  replace: string;
  /**
   * The agent test files (real processes on moto) that must catch it, for code the simulation
   * does not run; without them, the property suite.
   */
  agentTests?: string[];
}

export const MUTANTS: Mutant[] = [
  {
    name: 'no-epoch-fence',
    breaks: 'reconcile changes AWS without first checking that its epoch is current and its lock held',
    file: 'controller/reconcile/reconcile.ts',
    find: '      await store.fence(cluster, group.name, guard());\n',
    replace: '',
  },
  {
    name: 'watchdog-silence-lease-minus-margin',
    breaks: "a watchdog node's silence is counted as lease - fenceMargin instead of the lease",
    file: 'shared/config/timing.ts',
    find: '  if (reliesOnWatchdog(promise, reportedLeaseMs, t)) return lease;',
    replace: '  if (reliesOnWatchdog(promise, reportedLeaseMs, t)) return lease - t.fenceMarginMs;',
  },
  {
    name: 'peer-claim-token-not-compared',
    breaks: "a peer's silence report counts whichever renewal it watched, not only the current one",
    file: 'shared/core/liveness.ts',
    find: '    if (seen && seen.token === hb.token && seen.silentForMs >= needed) {',
    replace: '    if (seen && seen.silentForMs >= needed) {',
  },
  {
    name: 'peer-claim-alone',
    breaks: "one node's word demotes another: a peer's report counts without the node's own send time",
    file: 'shared/core/liveness.ts',
    find: '  if (!sentLongAgo(hb.sentAt, needed, now, timing)) return undefined;\n',
    replace: '',
  },
  {
    name: 'stopped-report-any-epoch',
    breaks: "a node's report that a group is stopped counts at any epoch, not only the current one",
    file: 'shared/core/liveness.ts',
    find: "  if (report && report.state === 'stopped' && report.epoch >= state.epoch) {",
    replace: "  if (report && report.state === 'stopped') {",
  },
  {
    name: 'guard-ignores-lease',
    breaks: "the guard starts an application whatever the local agent's lease (dead, fenced, expired)",
    file: 'node-agent/core/admission.ts',
    find: '  if (!lease) {\n    return `no failover-agent has run',
    replace:
      '  if (lease || !lease) return undefined;\n  if (!lease) {\n    return `no failover-agent has run',
  },
  {
    name: 'guard-ignores-epoch',
    breaks: 'the guard starts an application for a record at another epoch (or naming another owner)',
    file: 'node-agent/core/admission.ts',
    find: '  if (record.owner !== node || record.epoch !== epoch) {',
    replace: '  if (false) {',
  },
  {
    name: 'agent-fences-late',
    breaks: 'the agent starts its self-fence one heartbeat after its lease ends instead of before',
    file: 'shared/config/timing.ts',
    find: '  return r.sentMono + r.leaseMs - r.fenceMarginMs;',
    replace: '  return r.sentMono + r.leaseMs + 500;',
  },
  {
    name: 'lock-time-not-checked',
    breaks: 'reconcile starts a change without checking by its clock that its lock outlasts the call',
    file: 'shared/config/timing.ts',
    find: '  return lockExpiresAt - now > worstCaseMs + t.maxClockSkewMs;',
    replace: '  return true;',
  },
  {
    name: 'lock-skew-ignored',
    breaks:
      "reconcile's lock check forgets that another controller's clock may pass the lock's end up to the skew earlier",
    file: 'shared/config/timing.ts',
    find: '  return lockExpiresAt - now > worstCaseMs + t.maxClockSkewMs;',
    replace: '  return lockExpiresAt - now > worstCaseMs;',
  },
  {
    name: 'wall-clock-as-stop-proof',
    breaks: "the node's own wall clock (its send time, with no monotonic first read) proves it stopped",
    file: 'shared/core/liveness.ts',
    find: '  if (!sentLongAgo(hb.sentAt, needed, now, timing)) return undefined;\n',
    replace:
      "  if (now - hb.sentAt >= needed) return `${node}'s own send time is ${now - hb.sentAt} ms old`;\n  if (!sentLongAgo(hb.sentAt, needed, now, timing)) return undefined;\n",
  },
  {
    name: 'stop-instance-not-confirmed',
    breaks:
      'an instance counts as stopped once StopInstances is sent (state stopping), not once it is stopped',
    file: 'shared/core/liveness.ts',
    find: "export const INSTANCE_DOWN_STATES: ReadonlySet<string> = new Set(['stopped', 'terminated']);",
    replace:
      "export const INSTANCE_DOWN_STATES: ReadonlySet<string> = new Set(['stopping', 'stopped', 'terminated']);",
  },
  {
    name: 'stopped-instance-any-renewal',
    breaks:
      'a describe saying "stopped" counts even when the node has renewed since (it was started again meanwhile)',
    file: 'shared/core/liveness.ts',
    find: '  if (instanceDown(obs?.instance) && (!hb || sentBefore(hb.sentAt, obs!.instance!.describedAt, timing))) {',
    replace: '  if (instanceDown(obs?.instance)) {',
  },
  {
    name: 'mayrun-dropped-before-stop',
    breaks: 'a live old owner leaves mayRun before its stop succeeded (the update is applied first)',
    file: 'shared/core/decide.ts',
    find: "      // Alive: stop it ourselves (through the agent's guard, at the current epoch), then it is out.\n      for (const r of execs)",
    replace:
      "      // Alive: stop it ourselves (through the agent's guard, at the current epoch), then it is out.\n      actions.push({ type: 'update', set: { mayRun: state.mayRun.filter((n) => n !== node) }, why: 'mutant' });\n      for (const r of execs)",
  },
  {
    name: 'idle-feed-not-checked',
    breaks: 'the guard admits a start that an idle watchdog feed could keep alive past the lease end',
    file: 'node-agent/core/admission.ts',
    find: '  return watchdogProblem(lease);\n}',
    replace: '  return undefined;\n}',
  },
  {
    name: 'no-repair-request',
    breaks: 'a change that may have landed after the lock passed on is left to the next schedule',
    file: 'controller/reconcile/reconcile.ts',
    find: '    if (!mutationMayBeStale(now, lockExpiresAt, config.timing)) return;',
    replace: '    return;',
  },
  {
    name: 'stop-proven-at-decision-time',
    breaks:
      'a silence is proven at the decision, after a slow read came back, not at the read of the heartbeats it rests on',
    file: 'shared/core/decide.ts',
    find: '    readAt: Math.min(obs.readAt, obs.now),\n',
    replace: '    readAt: obs.now,\n',
  },
  {
    name: 'heartbeats-stamped-after-read',
    breaks:
      'the time of the heartbeats is taken when all the reads beside them came back, not when they were sent',
    file: 'controller/reconcile/observe.ts',
    find: '      return { readAt, heardAt, heartbeats, facts, requests };',
    replace: '      return { readAt: this.deps.clock.now(), heardAt, heartbeats, facts, requests };',
  },
  {
    name: 'takeover-not-pinned',
    breaks:
      'a takeover that starts the group on its own read drops the old owner from mayRun without pinning its renewal: one landing between the read and the write goes unseen',
    file: 'shared/core/decide.ts',
    find: '  const pins = stopped.map((node) => ({ node, token: ctx.obs.nodes[node]?.heartbeat?.token ?? null }));\n',
    replace: '  const pins: { node: string; token: string | null }[] = [];\n',
  },
  {
    name: 'lock-file-created-then-written',
    breaks:
      'the lock file is created empty, then its owner written: a guard stalled between the two loses its lock to a fence or a stale check while it lives, and starts unrecorded',
    file: 'node-agent/file-lock.ts',
    find: '    linkSync(mine, file);\n',
    replace:
      "    const created = openSync(file, 'wx', 0o600);\n    try {\n      writeSync(created, readFileSync(mine));\n    } finally {\n      closeSync(created);\n    }\n",
    agentTests: ['test/agent/protocol.test.ts'],
  },
  {
    name: 'lock-held-never-rechecked',
    breaks:
      'a guard takes its lock for still its own without reading the file: a start goes on after its lock was taken',
    file: 'node-agent/file-lock.ts',
    find: "    return 'unknown' in read || ('owner' in read && read.owner.nonce === this.owner.nonce);",
    replace: '    return read !== undefined;',
    agentTests: ['test/agent/fence.test.ts'],
  },
  {
    name: 'lost-lock-leaves-command',
    breaks: 'a start that loses its lock while its command runs leaves what the command started running',
    file: 'node-agent/guard.ts',
    find: "  if (run.cmdPid) killGroup(run.cmdPid, 'SIGKILL');\n  killMarked(run.nonce);\n",
    replace: '',
    agentTests: ['test/agent/fence.test.ts'],
  },
  {
    name: 'urgent-stop-spares-newer-start',
    breaks:
      'a stop the fence made urgent still returns without stopping when the local record changed while it waited (a newer start)',
    file: 'node-agent/group-stopper.ts',
    find: '        !entry.urgent &&\n',
    replace: '',
    agentTests: ['test/agent/group-stopper.test.ts'],
  },
  {
    name: 'fence-needs-its-lock',
    breaks:
      'a fence that cannot write the lock file (a full disk) gives up: the application runs on past the lease',
    file: 'node-agent/group-stopper.ts',
    find: '      if (!entry.urgent) throw e;\n',
    replace: '      throw e;\n',
    agentTests: ['test/agent/group-stopper.test.ts'],
  },
  {
    name: 'address-command-unmarked',
    breaks:
      "a guard's `ip addr add` does not carry its run's marker: the fence cannot kill it, and the address lands after the stop",
    file: 'node-agent/guard.ts',
    find: '  if (run) process.env[GUARD_MARKER] = run.nonce;\n',
    replace: '',
    agentTests: ['test/agent/fence.test.ts'],
  },
  {
    name: 'guard-stop-ignores-dead-start',
    breaks:
      "a guard stop that finds a start whose guard died leaves that start's command going: it starts the application after the stop",
    file: 'node-agent/guard.ts',
    find: '    previous?.run && !sameProcessAlive(previous.run.guardPid, previous.run.guardStart)\n      ? previous.run\n      : undefined;',
    replace: '    undefined as GuardRun | undefined;',
    agentTests: ['test/agent/fence.test.ts'],
  },
  {
    name: 'fence-does-not-wait-for-own-start',
    breaks:
      "a fence records stopped while the agent's own start under way in its process may still put the address on",
    file: 'node-agent/group-stopper.ts',
    find: '      const own = this.deps.startInProcess?.(group);\n',
    replace: '      const own = undefined as Promise<unknown> | undefined;\n',
    agentTests: ['test/agent/group-stopper.test.ts'],
  },
  {
    name: 'recorded-command-pid-trusted',
    breaks: 'a recorded command pid is killed whoever has it now (reused since, or from before a reboot)',
    file: 'node-agent/local-state.ts',
    find: '  if (run.boot !== undefined && boot !== undefined && run.boot !== boot) return false;\n',
    replace: '',
    agentTests: ['test/agent/group-stopper.test.ts'],
  },
  {
    name: 'dead-start-marker-dropped',
    breaks:
      "a guard run that takes over a dead start's group does not keep its marker in the record: if it dies too, the next stop cannot find what the dead start left",
    file: 'node-agent/guard.ts',
    find: '    ...(ctx.left.length > 0 ? { left: ctx.left } : {}),\n',
    replace: '',
    agentTests: ['test/agent/fence.test.ts'],
  },
  {
    name: 'fence-waits-for-own-start-forever',
    breaks: "a fence waits without a bound for the agent's own start under way (stuck in a DynamoDB read)",
    file: 'node-agent/group-stopper.ts',
    find: '          sleep(OWN_START_WAIT_MS).then(() => false),\n',
    replace: '          new Promise<boolean>(() => undefined),\n',
    agentTests: ['test/agent/group-stopper.test.ts'],
  },
  {
    name: 'stopping-record-drops-markers',
    breaks:
      "the agent's stop keeps an interrupted run's marker only in memory while its stop scripts run: if it dies then, the next stop cannot find what that run left",
    file: 'node-agent/group-stopper.ts',
    find: "      write({ ...base, ...kept, state: 'stopping',",
    replace: "      write({ ...base, state: 'stopping',",
    agentTests: ['test/agent/group-stopper.test.ts'],
  },
];

const REPO = path.resolve(import.meta.dirname, '..');
/** What a copy needs to run the property suite and the agent tests (node_modules is linked, not copied). */
const COPY = [
  'shared',
  'controller',
  'node-agent',
  'testkit',
  'test/property',
  'test/agent',
  'test/integration/global-setup.ts',
  'bin',
  'sandbox/fake-ip.ts',
  'scripts',
  'package.json',
  'tsconfig.json',
  'vitest.config.ts',
];

interface Outcome {
  mutant: Mutant;
  killed: boolean;
  by?: string;
  ms: number;
  error?: string;
}

function prepareCopy(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'failover-mutants-'));
  for (const entry of COPY) cpSync(path.join(REPO, entry), path.join(dir, entry), { recursive: true });
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
  return dir;
}

/** Applies one mutant to a copy; returns a function that puts the file back. */
function apply(dir: string, m: Mutant): () => void {
  const file = path.join(dir, m.file);
  const original = readFileSync(file, 'utf8');
  const count = original.split(m.find).length - 1;
  if (count !== 1) {
    throw new Error(
      `mutant ${m.name}: its text occurs ${count} times in ${m.file} (expected once); update scripts/mutants.ts to the code as it is now`,
    );
  }
  writeFileSync(file, original.replace(m.find, m.replace));
  return () => writeFileSync(file, original);
}

/**
 * What catches a mutant in `dir`, or undefined: its agent test files when it names them; else the
 * targeted schedules first (seconds; they are written for the windows these mutants open), then, if
 * the mutant survives them, the whole property suite with its random schedules.
 */
async function runSuite(
  dir: string,
  runs: number,
  agentTests: string[] | undefined,
): Promise<{ failed?: string; error?: string }> {
  if (agentTests) return runVitest(dir, runs, agentTests, 'agent');
  const targeted = await runVitest(dir, runs, ['test/property/targeted.property.test.ts']);
  if (targeted.failed || targeted.error) return targeted;
  return runVitest(dir, runs, []);
}

function runVitest(
  dir: string,
  runs: number,
  files: string[],
  project: 'property' | 'agent' = 'property',
): Promise<{ failed?: string; error?: string }> {
  const report = path.join(dir, 'mutant-report.json');
  rmSync(report, { force: true });
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [
        path.join(REPO, 'node_modules/vitest/vitest.mjs'),
        'run',
        '--project',
        project,
        '--reporter=json',
        `--outputFile=${report}`,
        '--bail=1',
        ...files,
      ],
      {
        cwd: dir,
        env: { ...process.env, FAILOVER_PROPERTY_RUNS: String(runs) },
        stdio: ['ignore', 'ignore', 'pipe'],
      },
    );
    let stderr = '';
    child.stderr.on('data', (d) => {
      stderr = (stderr + d.toString()).slice(-4000);
    });
    child.on('exit', (code) => {
      if (!existsSync(report)) {
        resolve({
          error: `vitest wrote no report (exit ${code}): ${stderr.trim().split('\n').slice(-3).join(' ')}`,
        });
        return;
      }
      const json = JSON.parse(readFileSync(report, 'utf8')) as {
        testResults: {
          message?: string;
          assertionResults: { title: string; status: string; failureMessages: string[] }[];
        }[];
      };
      for (const file of json.testResults) {
        // A file that failed to load (a mutant that does not compile) is not a kill.
        if (file.message && file.assertionResults.length === 0) {
          resolve({ error: `the suite did not load: ${file.message.split('\n')[0]}` });
          return;
        }
        const failed = file.assertionResults.find((a) => a.status === 'failed');
        if (failed) {
          const why = (failed.failureMessages[0] ?? '')
            .split('\n')
            .find((l) => /violation|split brain|expected|t=\d+/.test(l));
          resolve({ failed: `"${failed.title}"${why ? `: ${why.trim().slice(0, 220)}` : ''}` });
          return;
        }
      }
      resolve({});
    });
  });
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      only: { type: 'string' },
      list: { type: 'boolean' },
      jobs: { type: 'string' },
      runs: { type: 'string' },
    },
  });
  const wanted = values.only?.split(',').map((s) => s.trim());
  const unknown = wanted?.filter((w) => !MUTANTS.some((m) => m.name === w)) ?? [];
  if (unknown.length > 0) {
    console.error(`unknown mutant ${unknown.join(', ')}; known: ${MUTANTS.map((m) => m.name).join(', ')}`);
    return 2;
  }
  const mutants = wanted ? MUTANTS.filter((m) => wanted.includes(m.name)) : MUTANTS;
  if (values.list) {
    for (const m of mutants) console.log(`${m.name.padEnd(38)} ${m.file}\n${' '.repeat(39)}${m.breaks}`);
    return 0;
  }
  const runs = Number(values.runs ?? process.env.FAILOVER_PROPERTY_RUNS ?? 150);
  const jobs = Math.max(1, Number(values.jobs ?? 2));
  const onAgent = mutants.filter((m) => m.agentTests).length;
  console.log(
    `mutants: ${mutants.length} (${mutants.length - onAgent} on the property suite with ${runs} schedules each, ${onAgent} on the agent tests), ${jobs} at a time`,
  );

  // Every mutant must still apply before anything runs.
  const check = prepareCopy();
  try {
    for (const m of mutants) apply(check, m)();
  } catch (e) {
    console.error((e as Error).message);
    return 2;
  } finally {
    rmSync(check, { recursive: true, force: true });
  }

  // The suite must pass on the code as it is: a test failing anyway would "kill" every mutant.
  const started = Date.now();
  const baseline = prepareCopy();
  try {
    const agentTests = [...new Set(mutants.flatMap((m) => m.agentTests ?? []))];
    const suites = [
      ...(mutants.some((m) => !m.agentTests) ? [{ name: 'the property suite', files: undefined }] : []),
      ...(agentTests.length > 0
        ? [{ name: `the agent tests ${agentTests.join(', ')}`, files: agentTests }]
        : []),
    ];
    for (const suite of suites) {
      const r = await runSuite(baseline, runs, suite.files);
      if (r.failed || r.error) {
        console.error(
          `${suite.name} fail without any mutant (${r.failed ?? r.error}); a kill would prove nothing: make it pass first`,
        );
        return 2;
      }
    }
    console.log(
      `baseline: ${suites.map((x) => x.name).join(' and ')} pass without a mutant (${Math.round((Date.now() - started) / 1000)} s)`,
    );
  } finally {
    rmSync(baseline, { recursive: true, force: true });
  }

  const queue = [...mutants];
  const outcomes: Outcome[] = [];
  const worker = async () => {
    const dir = prepareCopy();
    try {
      for (let m = queue.shift(); m; m = queue.shift()) {
        const t0 = Date.now();
        const restore = apply(dir, m);
        try {
          const r = await runSuite(dir, runs, m.agentTests);
          const o: Outcome = {
            mutant: m,
            killed: r.failed !== undefined,
            ms: Date.now() - t0,
            ...(r.failed ? { by: r.failed } : {}),
            ...(r.error ? { error: r.error } : {}),
          };
          outcomes.push(o);
          const mark = o.error ? 'ERROR   ' : o.killed ? 'killed  ' : 'SURVIVED';
          console.log(`${mark} ${m.name} (${Math.round(o.ms / 1000)} s) — ${m.breaks}`);
          if (o.by) console.log(`         by ${o.by}`);
          if (o.error) console.log(`         ${o.error}`);
        } finally {
          restore();
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, mutants.length) }, worker));
  const killed = outcomes.filter((o) => o.killed && !o.error).length;
  console.log(`\n${Math.round((Date.now() - started) / 1000)} s in all`);
  console.log(`killed ${killed}/${mutants.length}`);
  return killed === mutants.length ? 0 : 1;
}

process.exitCode = await main();
