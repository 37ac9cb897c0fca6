/**
 * The import rules of the layout (ARCHITECTURE.md, "Layers"). `npm test` runs them
 * (scripts/test.mjs: `depcruise`); a forbidden import fails the build with the rule's name.
 *
 *   shared/base      nothing (node: only)               errors, IPv4, did-you-mean
 *   shared/config    base                               the definition, the kinds table, timing
 *   shared/core      base, config                       the pure domain: decide, liveness, model
 *   shared/table     base, config, core, aws            the state table without the SDK
 *   shared/aws       base                               AWS options and error mapping, no SDK
 *   controller/      shared                             what the Lambda functions ship
 *   functions/       controller, shared                 the Lambda handlers
 *   node-agent/      shared (no SDK clients, no zod)    what the agent bundle ships
 *   node-agent/core  timing, kinds, model (no IO)       the agent's pure core (agent, guard, sim)
 *   cli/             controller, shared                 failoverctl (and what only it uses)
 *   sandbox/, bench/ anything but test/                 the local sandbox and the benchmarks
 */
const folder = (name) => `^${name}/`;

/** A folder that may import only from the listed folders (and itself, node builtins, npm). */
const only = (name, from, allowed, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: folder(from) },
  to: {
    path: '^(shared|controller|functions|node-agent|cli|sandbox|bench|test|scripts|testkit)/',
    pathNot: [folder(from), ...allowed.map(folder)],
  },
});

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'Modules must not import each other in a circle: the layers are a stack.',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    only('base-stands-alone', 'shared/base', [], 'shared/base is the dependency-free floor.'),
    only('config-on-base', 'shared/config', ['shared/base'], 'The definition knows nothing of the domain.'),
    only(
      'core-is-pure',
      'shared/core',
      ['shared/base', 'shared/config'],
      'The pure domain imports no adapter.',
    ),
    only(
      'table-is-shared',
      'shared/table',
      ['shared/base', 'shared/config', 'shared/core', 'shared/aws'],
      'The table mapping is shared by the controller and the agent: no adapter, no SDK.',
    ),
    only(
      'aws-options-alone',
      'shared/aws',
      ['shared/base'],
      'AWS options and error mapping stand on base only.',
    ),
    only(
      'controller-on-shared',
      'controller',
      ['shared'],
      'What the Lambda functions ship: the shared layers and itself, never the agent or the CLI.',
    ),
    only('functions-wire-controller', 'functions', ['controller', 'shared'], 'Handlers only wire things up.'),
    only('agent-on-shared', 'node-agent', ['shared'], 'What the agent ships: the shared layers and itself.'),
    only(
      'cli-on-controller',
      'cli',
      ['controller', 'shared'],
      'failoverctl uses the controller and the shared layers.',
    ),
    {
      name: 'no-tests-outside-test',
      comment:
        'Nothing that ships or runs the sandbox and the benchmarks depends on the tests; share through testkit/.',
      severity: 'error',
      from: { path: '^(shared|controller|functions|node-agent|cli|sandbox|bench|scripts|testkit)/' },
      to: { path: '^test/' },
    },
    {
      name: 'agent-core-is-pure',
      comment:
        'The agent core (lease and fence, watchdog rule, admission, claims, following) runs in the agent, the guard and the simulation alike: time, timers and IO are passed in.',
      severity: 'error',
      from: { path: '^node-agent/core/' },
      to: {
        pathNot: [
          '^node-agent/core/',
          '^shared/config/(timing|kinds)\\.ts$',
          '^shared/core/model\\.ts$',
          '^shared/base/',
        ],
      },
    },
    {
      name: 'agent-core-without-builtins',
      comment: 'No file system, processes or timers in the agent core: the caller does the IO.',
      severity: 'error',
      from: { path: '^node-agent/core/' },
      to: { dependencyTypes: ['core'] },
    },
    {
      name: 'agent-without-sdk-clients',
      comment:
        'The agent has its own small DynamoDB client (node-agent/dynamodb.ts): the SDK clients would double its memory.',
      severity: 'error',
      from: { path: '^node-agent/' },
      to: { path: 'node_modules/(@aws-sdk/client-|@aws-sdk/lib-dynamodb)' },
    },
    {
      name: 'agent-without-zod',
      comment: 'The stored definition was validated when applied; loading zod costs the agent about 7 MB.',
      severity: 'error',
      from: { path: '^node-agent/' },
      to: { path: 'node_modules/zod/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'resources-below-reconcile',
      comment:
        'Resource drivers, the store and the notifier are adapters: reconcile uses them, never the reverse.',
      severity: 'error',
      from: { path: '^controller/(resources|state|notify|aws)/' },
      to: { path: '^controller/reconcile/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/|^dist/|^\\.serverless/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.mts', '.mjs', '.js', '.json'] },
  },
};
