/**
 * The import rules of the layout (.dependency-cruiser.cjs, ARCHITECTURE.md "Layers") hold on the
 * tree, and they do catch an import that breaks them: the same rules run over a small tree of the
 * same shape with one forbidden import of each kind.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cruise } from 'dependency-cruiser';
import { afterAll, describe, expect, it } from 'vitest';

const REPO = path.resolve(import.meta.dirname, '../..');
// biome-ignore lint/suspicious/noExplicitAny: the rule set is plain CommonJS
const rules = (await import(path.join(REPO, '.dependency-cruiser.cjs'))).default as any;

async function violations(cwd: string, dirs: string[]): Promise<string[]> {
  const before = process.cwd();
  process.chdir(cwd);
  try {
    const result = await cruise(dirs, {
      ...rules.options,
      tsConfig: undefined,
      validate: true,
      ruleSet: { forbidden: rules.forbidden },
    });
    const output = result.output as {
      summary: { violations: { rule: { name: string }; from: string; to: string }[] };
    };
    return output.summary.violations.map((v) => `${v.rule.name}: ${v.from} -> ${v.to}`);
  } finally {
    process.chdir(before);
  }
}

const tmp = mkdtempSync(path.join(os.tmpdir(), 'layers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function file(rel: string, text: string): void {
  mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
  writeFileSync(path.join(tmp, rel), text);
}

describe('import rules', () => {
  it('hold on the tree', async () => {
    expect(
      await violations(REPO, [
        'shared',
        'controller',
        'functions',
        'node-agent',
        'cli',
        'sandbox',
        'bench',
        'testkit',
      ]),
    ).toEqual([]);
  }, 60_000);

  it('fail on an import that breaks them', async () => {
    file('shared/base/errors.ts', "import { x } from '../config/schema';\nexport const e = x;\n");
    file('shared/config/schema.ts', "import { d } from '../core/decide';\nexport const x = d;\n");
    file('shared/core/decide.ts', "import { s } from '../../controller/state/store';\nexport const d = s;\n");
    file('controller/state/store.ts', "import { a } from '../../node-agent/agent';\nexport const s = a;\n");
    file('node-agent/agent.ts', "import { c } from '../cli/main';\nexport const a = c;\n");
    file('cli/main.ts', 'export const c = 1;\n');
    file(
      'node-agent/core/lease.ts',
      "import { readFileSync } from 'node:fs';\nimport { l } from '../local-state';\nexport const x = [readFileSync, l];\n",
    );
    file('node-agent/local-state.ts', 'export const l = 1;\n');
    file('bench/run.ts', "import { k } from '../test/kit';\nexport const r = k;\n");
    file('test/kit.ts', 'export const k = 1;\n');
    file('controller/resources/vip.ts', "import { r } from '../reconcile/run';\nexport const v = r;\n");
    file('controller/reconcile/run.ts', "import { v } from '../resources/vip';\nexport const r = v;\n");
    const found = await violations(tmp, ['shared', 'controller', 'node-agent', 'cli', 'bench', 'test']);
    const names = [...new Set(found.map((f) => f.split(':')[0]))].sort();
    expect(names).toEqual([
      'agent-core-is-pure',
      'agent-core-without-builtins',
      'agent-on-shared',
      'base-stands-alone',
      'config-on-base',
      'controller-on-shared',
      'core-is-pure',
      'no-circular',
      'no-tests-outside-test',
      'resources-below-reconcile',
    ]);
  }, 60_000);
});
