/**
 * The agent's version, reported in every heartbeat. The bundle (scripts/agent-build.mjs) replaces
 * __FAILOVER_AGENT_VERSION__ with package.json's version; from a checkout it is read at start.
 */
import { readFileSync } from 'node:fs';

declare const __FAILOVER_AGENT_VERSION__: string | undefined;

function fromPackageJson(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as {
      version?: string;
    };
    return `${pkg.version ?? '0.0.0'}-dev`;
  } catch {
    return 'dev';
  }
}

/** Reported in every heartbeat as `agentVersion`. */
export const AGENT_VERSION: string =
  typeof __FAILOVER_AGENT_VERSION__ === 'string' ? __FAILOVER_AGENT_VERSION__ : fromPackageJson();
