/**
 * Every example definition in examples/ is valid as written (users copy them), and every example
 * script parses as POSIX shell. The smallest shapes users write are among them: a floating IP
 * alone, a same-subnet secondary IP, an application whose data lives on EFS.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { isApplication } from '../../shared/config/kinds';
import { loadClusterConfigText } from '../../shared/config/load';

const ROOT = path.resolve(import.meta.dirname, '../../examples');
const files = (dir: string): string[] =>
  readdirSync(dir).flatMap((f) => {
    const p = path.join(dir, f);
    return statSync(p).isDirectory() ? files(p) : [p];
  });
const all = files(ROOT);
const definitions = all.filter((f) => f.endsWith('.yaml'));
const scripts = all.filter((f) => f.endsWith('.sh'));

describe('examples', () => {
  it.each(definitions.map((f) => [path.relative(ROOT, f), f]))('%s is a valid definition', (_, file) => {
    const result = loadClusterConfigText(readFileSync(file, 'utf8'), file);
    expect(result.ok ? [] : result.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([]);
  });

  it('include a floating IP without application and a secondary IP', () => {
    const groups = definitions.flatMap((f) => {
      const r = loadClusterConfigText(readFileSync(f, 'utf8'), f);
      return r.ok ? r.config.groups : [];
    });
    expect(groups.some((g) => g.resources.length === 1 && g.resources[0]!.type === 'vip')).toBe(true);
    expect(groups.some((g) => g.resources.some((r) => r.type === 'secondaryIp'))).toBe(true);
    expect(groups.some((g) => !g.resources.some(isApplication))).toBe(true);
  });

  it.each(scripts.map((f) => [path.relative(ROOT, f), f]))(
    '%s parses as shell and is executable',
    (_, file) => {
      const check = spawnSync('sh', ['-n', file], { encoding: 'utf8' });
      expect(check.status, check.stderr).toBe(0);
      expect(statSync(file).mode & 0o111).not.toBe(0);
    },
  );
});
