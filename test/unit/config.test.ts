import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { Io } from '../../cli/context';
import { main } from '../../cli/main';
import { ConfigError } from '../../shared/base/errors';
import { clusterJsonSchema } from '../../shared/config/json-schema';
import {
  configHash,
  loadClusterConfigText,
  parseClusterConfig,
  validateClusterConfig,
} from '../../shared/config/load';
import { crossFieldIssues, defaultTiming, renewalAfterLostMs } from '../../shared/config/rules';

const example = readFileSync(new URL('../../examples/cluster.yaml', import.meta.url), 'utf8');

function issuesOf(text: string) {
  const result = loadClusterConfigText(text, 'c.yaml');
  if (result.ok) throw new Error('expected problems');
  return result.issues;
}

function capture(env: Record<string, string | undefined> = {}): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    stdout,
    stderr,
    out: (t) => stdout.push(t),
    err: (t) => stderr.push(t),
    env,
    now: () => 1_700_000_000_000,
  };
}

describe('cluster definition', () => {
  it('accepts the documented example and fills in defaults', () => {
    const result = loadClusterConfigText(example, 'examples/cluster.yaml');
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    const { config } = result;
    expect(config.timing).toEqual({
      heartbeatIntervalMs: 1750,
      leaseMs: 3750,
      maxClockSkewMs: 500,
      fenceMarginMs: 1000,
      heartbeatRetryMs: 250,
    });
    const db = config.groups[0]!;
    expect(db.resources.map((r) => r.type)).toEqual(['vip', 'eip', 'dns', 'exec']);
    expect(db.resources[2]).toMatchObject({
      recordName: 'db.example.internal.',
      ttl: 10,
      deleteOnDeactivate: true,
    });
    expect(db.resources[3]).toMatchObject({ async: false, timeoutSec: 300 });
    expect(db.resources[3]).not.toHaveProperty('document');
    expect(db.monitors[0]).toMatchObject({
      recovery: { restarts: 0, failovers: 1, finalAction: 'none' },
      retries: 1,
    });
    expect(db).toMatchObject({ failback: false, autoStart: true, fencing: 'none' });
  });

  it('normalizes record names to a lowercase FQDN with the trailing dot', () => {
    const config = parseClusterConfig({
      cluster: 'c',
      region: 'us-east-1',
      nodes: [{ name: 'n1', instanceId: 'i-1', az: 'us-east-1a', privateIp: '10.0.0.1' }],
      groups: [
        {
          name: 'g',
          nodes: ['n1'],
          resources: [{ type: 'dns', name: 'd', hostedZoneId: 'Z1', recordName: 'DB.Example.Internal' }],
        },
      ],
    });
    expect(config.groups[0]!.resources[0]).toMatchObject({ recordName: 'db.example.internal.' });
  });

  it('defaults: the agent fences 1 s before its lease ends, and 3 lost renewals in a row do not fence it', () => {
    const t = defaultTiming();
    expect(t.fenceMarginMs).toBeGreaterThanOrEqual(1000);
    // The renewal after 3 lost ones is sent before the self-fence, with room for DynamoDB latency.
    const tolerated =
      t.leaseMs - t.fenceMarginMs - renewalAfterLostMs(t.heartbeatIntervalMs, t.heartbeatRetryMs, 3);
    expect(tolerated).toBeGreaterThanOrEqual(200);
    expect(crossFieldIssues({ timing: {} })).toEqual([]);
    // One retry interval more than that window allows is refused, naming the lease to write.
    const issues = crossFieldIssues({ timing: { heartbeatIntervalMs: 2600, leaseMs: 3500 } });
    expect(issues.map((i) => i.path)).toEqual(['timing.leaseMs']);
    expect(issues[0]!.message).toMatch(
      /3 lost renewals in a row .* take 3350 ms; write leaseMs: 4350 or more/,
    );
  });

  it('reports every problem at once, with path, line and what to write instead', () => {
    const issues = issuesOf(`cluster: orders
region: us-east-1
timing: { heartbeatIntervalMs: 1000, leaseMs: 2000, lease: 1 }
nodes:
  - { name: node1, instanceId: i-0aaa, az: us-west-2a, privateIp: 10.0.1.10 }
  - { name: node1, instanceId: i-0bbb, eni: eni-0bbb, az: us-east-1b }
groups:
  - name: db
    nodes: [node1, ghost]
    resources:
      - { type: vip, name: v, ip: 172.16.0.10, vpcId: vpc-0abc }
      - { type: dns, name: d, hostedZoneId: Z1, recordName: "bad name!" }
    monitors:
      - { type: pid, name: p, resource: missing }
`);
    const byPath = Object.fromEntries(issues.map((i) => [i.path, i]));
    expect(byPath['timing.leaseMs']?.message).toMatch(
      /fence itself 1334 ms after its last renewal .*3 lost renewals in a row .* take 1750 ms; write leaseMs: 2625 or more/,
    );
    expect(byPath['timing.lease']?.message).toMatch(/unknown key "lease"; did you mean "leaseMs"\?/);
    expect(byPath['nodes[0].az']?.message).toMatch(/not in region us-east-1/);
    expect(byPath['nodes[1].name']?.message).toMatch(/already used by nodes\[0\]/);
    expect(byPath['groups[0].nodes[1]']?.message).toMatch(
      /"ghost" is not defined under nodes; use one of: node1/,
    );
    expect(byPath['groups[0].resources[0]']?.message).toMatch(/needs an ENI for node "node1"/);
    expect(byPath['groups[0].resources[1].recordName']?.message).toMatch(/must be a DNS name/);
    expect(byPath['groups[0].monitors[0].resource']?.message).toMatch(
      /"missing" is not a resource of group db/,
    );
    expect(byPath['groups[0].monitors[0]']?.message).toMatch(/pidFile/);
    expect(issues.every((i) => /^c\.yaml:\d+:\d+$/.test(i.location ?? ''))).toBe(true);
    // Sorted in file order.
    const lines = issues.map((i) => Number(i.location!.split(':')[1]));
    expect([...lines].sort((a, b) => a - b)).toEqual(lines);
  });

  it('checks names across groups and monitors against resources', () => {
    const result = validateClusterConfig({
      cluster: 'c',
      region: 'eu-west-1',
      nodes: [
        { name: 'a', instanceId: 'i-1', eni: 'eni-1', az: 'eu-west-1a', privateIp: '10.0.0.1' },
        { name: 'b', instanceId: 'i-1', eni: 'eni-2', az: 'eu-west-1b', privateIp: '10.0.0.2' },
      ],
      groups: [
        {
          name: 'g',
          nodes: ['a', 'b', 'a'],
          resources: [{ type: 'eip', name: 'e', allocationId: 'eipalloc-1' }],
          monitors: [{ type: 'vip', name: 'e' }],
        },
        {
          name: 'g',
          nodes: ['b'],
          resources: [
            { type: 'eip', name: 'e2', allocationId: 'eipalloc-1' },
            { type: 'vip', name: 'v', ip: '10.0.0.1', vpcId: 'vpc-1' },
          ],
        },
      ],
    });
    expect(result.ok).toBe(false);
    if (result.ok) return;
    const messages = result.issues.map((i) => `${i.path}: ${i.message}`);
    expect(messages).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^nodes\[1\]\.instanceId: instanceId "i-1" is already used/),
        expect.stringMatching(/^groups\[0\]\.nodes\[2\]: node "a" is listed twice/),
        expect.stringMatching(/^groups\[0\]\.monitors\[0\]\.name: name "e" is already used/),
        expect.stringMatching(
          /^groups\[0\]\.monitors\[0\]\.type: monitor type vip needs a vip or secondaryIp resource/,
        ),
        expect.stringMatching(/^groups\[1\]\.name: group name "g" is already used/),
        expect.stringMatching(
          /^groups\[1\]\.resources\[0\]\.allocationId: allocation eipalloc-1 is already used/,
        ),
        expect.stringMatching(
          /^groups\[1\]\.resources\[1\]\.ip: VIP 10\.0\.0\.1 is the privateIp of nodes\[0\]/,
        ),
      ]),
    );
  });

  it('reports YAML syntax errors with their position', () => {
    const issues = issuesOf('cluster: orders\nnodes: [\n');
    expect(issues[0]?.message).toMatch(/not valid YAML/);
    expect(issues[0]?.location).toMatch(/^c\.yaml:\d+:\d+$/);
  });

  it('hashes a definition independently of key order', () => {
    const a = parseClusterConfig({
      cluster: 'c',
      region: 'us-east-1',
      nodes: [{ name: 'a', instanceId: 'i-1', az: 'us-east-1a' }],
    });
    const b = parseClusterConfig({
      nodes: [{ az: 'us-east-1a', instanceId: 'i-1', name: 'a' }],
      region: 'us-east-1',
      cluster: 'c',
    });
    expect(configHash(a)).toBe(configHash(b));
    expect(() => parseClusterConfig({})).toThrow(ConfigError);
  });

  it('ships a JSON Schema for editors that matches the zod schema', () => {
    const file = JSON.parse(
      readFileSync(new URL('../../schema/cluster.schema.json', import.meta.url), 'utf8'),
    );
    expect(file).toEqual(clusterJsonSchema());
    expect(file.additionalProperties).toBe(false);
  });
});

describe('failoverctl validate', () => {
  it('prints all 5 mistakes of a file with their paths and fixes, exits non-zero, writes nothing', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'validate-'));
    const file = join(dir, 'cluster.yaml');
    const text = example
      .replace('leaseMs: 3750', 'leaseMs: 2000') // 1: lease too short for 3 lost renewals
      .replace('az: us-east-1b', 'az: us-west-2b') // 2: AZ outside the region
      .replace('nodes: [node1, node2]', 'nodes: [node1, node3]') // 3: unknown node
      .replace('ip: 172.16.0.10', 'ip: 172.16.0.300') // 4: VIP not an IPv4 address
      .replace('ttl: 10,', 'ttl: 10, deleteOnDeactivat: true,'); // 5: typo in a key
    writeFileSync(file, text);
    // Any AWS call would fail: nothing may be written anywhere.
    const io = capture({ AWS_ENDPOINT_URL: 'http://127.0.0.1:9', AWS_REGION: 'us-east-1' });
    const code = await main(['validate', '-f', file], io);
    expect(code).toBe(2);
    const output = io.stderr.join('\n');
    expect(output).toMatch(/5 problems in the cluster definition/);
    expect(output).toMatch(
      /cluster\.yaml:7:\d+ timing\.leaseMs: the agent would fence itself 1334 ms after its last renewal .*write leaseMs: 3500 or more/,
    );
    expect(output).toMatch(
      /nodes\[1\]\.az: az "us-west-2b" is not in region us-east-1; write an Availability Zone of us-east-1/,
    );
    expect(output).toMatch(
      /groups\[0\]\.nodes\[1\]: node "node3" is not defined under nodes; use one of: node1, node2/,
    );
    expect(output).toMatch(
      /groups\[0\]\.resources\[0\]\.ip: ip must be an IPv4 address such as 10\.0\.1\.10 \(got "172\.16\.0\.300"\)/,
    );
    expect(output).toMatch(
      /groups\[0\]\.resources\[2\]\.deleteOnDeactivat: unknown key "deleteOnDeactivat"; did you mean "deleteOnDeactivate"\?/,
    );
    expect(output).toMatch(/nothing was written/);
    expect(io.stdout).toEqual([]);
    expect(readFileSync(file, 'utf8')).toBe(text);
    expect(readdirSync(dir)).toEqual(['cluster.yaml']);
  });

  it('exits 0 and summarizes a valid definition', async () => {
    const io = capture();
    const code = await main(
      ['validate', '-f', new URL('../../examples/cluster.yaml', import.meta.url).pathname],
      io,
    );
    expect(code).toBe(0);
    expect(io.stdout.join('\n')).toMatch(
      /is valid\ncluster orders \(us-east-1\): 2 nodes, 3 witnesses, 1 groups/,
    );
  });

  it('names a missing file and a missing flag', async () => {
    const io = capture();
    expect(await main(['validate', '-f', '/nonexistent/cluster.yaml'], io)).toBe(2);
    expect(io.stderr.join('\n')).toMatch(/cannot read \/nonexistent\/cluster\.yaml: ENOENT/);
    const io2 = capture();
    expect(await main(['validate'], io2)).toBe(2);
    expect(io2.stderr.join('\n')).toMatch(/required option '-f, --file <file>'/);
  });
});

describe('sizes the platform cannot hold, and input that is no definition', () => {
  const base = parseClusterConfig(loadClusterConfigTextOk(example));
  function loadClusterConfigTextOk(text: string) {
    const r = loadClusterConfigText(text, 'x.yaml');
    if (!r.ok) throw new Error('example must be valid');
    return r.config;
  }
  const nodes = (n: number) =>
    Array.from({ length: n }, (_, i) => ({
      name: `n${i}`,
      instanceId: `i-0${(i + 1).toString(16).padStart(8, '0')}`,
      eni: `eni-0${(i + 1).toString(16).padStart(8, '0')}`,
      az: 'us-east-1a',
    }));

  it('refuses a 5 MB file in one line, before parsing it (58,973 nodes passed before)', () => {
    const big = JSON.stringify({ ...base, groups: [], nodes: nodes(58_973) });
    expect(big.length).toBeGreaterThan(5_000_000);
    const issues = issuesOf(big);
    expect(issues).toEqual([
      {
        path: '',
        location: 'c.yaml',
        message: expect.stringMatching(/^the file is \d+ KB; a definition is at most 1024 KB/),
      },
    ]);
  });

  it('refuses more nodes than the agents can read each heartbeat, and commands longer than a line of shell', () => {
    expect(validateClusterConfig({ ...base, groups: [], nodes: nodes(100) }).ok).toBe(true);
    const many = validateClusterConfig({ ...base, groups: [], nodes: nodes(101) });
    expect(many.ok ? [] : many.issues).toEqual([
      {
        path: 'nodes',
        message: expect.stringMatching(/^nodes lists more than 100; every agent reads every peer/),
      },
    ]);
    const long = structuredClone(base);
    const app = long.groups[0]!.resources.find((r) => r.type === 'exec')!;
    if (app.type === 'exec') app.start = `/opt/app/start.sh ${'x'.repeat(5000)}`;
    const r = validateClusterConfig(long);
    expect(r.ok ? [] : r.issues.map((i) => i.message)).toEqual([
      expect.stringMatching(/^start is longer than 4096 characters; put the script in a file on the nodes/),
    ]);
    // Before: a 5 MB command passed validate and failed at apply or failover time.
    const huge = JSON.stringify({
      ...long,
      groups: [{ ...long.groups[0], resources: [{ ...app, start: 'y'.repeat(5_000_000) }] }],
    });
    expect(issuesOf(huge)).toHaveLength(1);
  });

  it('reports a YAML alias bomb as one line with the position of its first alias', () => {
    const bomb = [
      'cluster: bomb',
      'region: us-east-1',
      'a: &a ["x","x","x","x","x","x","x","x","x"]',
      'b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]',
      'c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]',
      'd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]',
      'e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]',
      'f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]',
      'nodes: [*f,*f,*f,*f,*f,*f,*f,*f,*f]',
    ].join('\n');
    // Before: "exits 1 with no position".
    expect(issuesOf(bomb)).toEqual([
      {
        path: '',
        location: 'c.yaml:4:8',
        message: expect.stringMatching(/^YAML aliases expand too far \(54 aliases; an alias bomb\?\)/),
      },
    ]);
  });

  it('reports binary input as one line with its position, and at most 10 syntax errors', () => {
    // Before: a binary file printed 428 KB of errors.
    const binary = `cluster: x\nregion: us-east-1\n${Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x00]).toString('latin1')}${'\u0001'.repeat(10_000)}`;
    expect(issuesOf(binary)).toEqual([
      {
        path: '',
        location: 'c.yaml:3:5',
        message: 'binary input, not a YAML or JSON text (byte 0x02); give the cluster definition file',
      },
    ]);
    const notUtf8 = Buffer.from([0x63, 0x3a, 0x20, 0xff, 0xfe, 0x0a]).toString('utf8');
    expect(issuesOf(notUtf8)[0]?.message).toMatch(/bytes that are not UTF-8/);
    const garbage = Array.from({ length: 500 }, () => '{{{ ]]] : :').join('\n');
    const issues = issuesOf(garbage);
    expect(issues.length).toBeLessThanOrEqual(11);
    expect(issues.at(-1)?.message).toMatch(/^and \d+ more syntax errors$/);
  });

  it('refuses document: on an exec resource, saying why (every command runs through the guard document)', () => {
    const withDoc = example.replace('timeoutSec: 300 }', 'timeoutSec: 300, document: AWS-RunShellScript }');
    expect(withDoc).not.toBe(example);
    expect(issuesOf(withDoc).map((i) => [i.path, i.message])).toEqual([
      [
        'groups[0].resources[3].document',
        expect.stringMatching(
          /^document is no longer set per resource: every start and stop runs through the SSM document/,
        ),
      ],
    ]);
  });
});
