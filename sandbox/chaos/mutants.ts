/**
 * Deliberate bugs in the agent, for showing that the nemesis catches what it is there to catch: a
 * checker that cannot fail proves nothing. `npm run chaos -- --mutant NAME` builds the agent bundle
 * the lanes run with the mutant's edits applied to the source as esbuild loads it; the repository's
 * files, the shipped bundle and the controller (which runs in the nemesis' own process) are left
 * alone. Each edit is an exact text replacement; one that no longer matches fails the build rather
 * than run an unmutated agent. (`npm run mutants` is the same idea against the property suite.)
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Plugin } from 'esbuild';

export interface AgentMutant {
  name: string;
  /** The safety rule it breaks, in a sentence. */
  breaks: string;
  /** Repository-relative path of the file edited. */
  file: string;
  edits: { find: string; replace: string }[];
}

export const AGENT_MUTANTS: AgentMutant[] = [
  {
    name: 'agent-never-fences',
    breaks:
      'the agent takes every acknowledged renewal for an hour-long lease: it never fences itself, and keeps feeding its watchdog while it cannot renew',
    file: 'shared/config/timing.ts',
    edits: [
      {
        find: '  return r.sentMono + r.leaseMs - r.fenceMarginMs;\n',
        replace: '  return r.sentMono + 3_600_000;\n',
      },
      {
        find: '  return r.sentMono + r.leaseMs;\n',
        replace: '  return r.sentMono + 3_600_000 + r.fenceMarginMs;\n',
      },
    ],
  },
  {
    name: 'guard-ignores-lease',
    breaks: "the guard starts an application whatever the local agent's lease (dead, fenced, expired)",
    file: 'node-agent/core/admission.ts',
    edits: [
      {
        find: '  if (!lease) {\n    return `no failover-agent has run',
        replace:
          '  if (lease || !lease) return undefined;\n  if (!lease) {\n    return `no failover-agent has run',
      },
    ],
  },
];

export function agentMutant(name: string): AgentMutant {
  const m = AGENT_MUTANTS.find((x) => x.name === name);
  if (!m)
    throw new Error(`no agent mutant "${name}" (known: ${AGENT_MUTANTS.map((x) => x.name).join(', ')})`);
  return m;
}

/** An esbuild plugin that applies the mutant's edits to its file as the bundle is built. */
export function mutantPlugin(m: AgentMutant, repo: string): Plugin {
  const target = resolve(join(repo, m.file));
  return {
    name: `chaos-mutant-${m.name}`,
    setup(b) {
      b.onLoad({ filter: /\.ts$/ }, (args) => {
        if (resolve(args.path) !== target) return undefined;
        let text = readFileSync(target, 'utf8');
        for (const e of m.edits) {
          if (!text.includes(e.find))
            throw new Error(`mutant ${m.name}: ${m.file} no longer contains ${JSON.stringify(e.find)}`);
          text = text.replace(e.find, e.replace);
        }
        return { contents: text, loader: 'ts' };
      });
    },
  };
}
