/**
 * failoverctl's version (`failoverctl --version`). The bundle (scripts/build.mjs) replaces
 * __FAILOVERCTL_VERSION__ with package.json's version; from the sources it is read at start.
 */
import { readFileSync } from 'node:fs';

declare const __FAILOVERCTL_VERSION__: string | undefined;

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

export const CLI_VERSION: string =
  typeof __FAILOVERCTL_VERSION__ === 'string' ? __FAILOVERCTL_VERSION__ : fromPackageJson();
