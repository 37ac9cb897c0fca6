/**
 * The `browser` project's setup: Debian's Chromium where it is missing (scripts/install-chromium.mjs,
 * apt-get as root; never a test tool's own browser download), and one moto server shared by the
 * sandbox and the console tests.
 */
import type { TestProject } from 'vitest/node';
// @ts-expect-error plain ESM script without type declarations
import { startEmulator } from '../../scripts/emulator.mjs';
// @ts-expect-error plain ESM script without type declarations
import { ensureChromium } from '../../scripts/install-chromium.mjs';

declare module 'vitest' {
  export interface ProvidedContext {
    awsEndpoint: string;
    chromium: string;
  }
}

export default async function setup(project: TestProject) {
  const chromium: string = ensureChromium({ log: (line: string) => console.log(line) });
  const emulator = await startEmulator({ log: (line: string) => console.log(line) });
  project.provide('chromium', chromium);
  project.provide('awsEndpoint', emulator.endpoint);
  return async () => {
    await emulator.stop();
  };
}
