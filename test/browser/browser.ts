/** Headless Chromium (Debian's) driven by playwright-core, with the flags a closed network needs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
// @ts-expect-error plain ESM script without type declarations
import { CHROMIUM_FLAGS } from '../../scripts/install-chromium.mjs';

export interface Browser {
  context: BrowserContext;
  close(): Promise<void>;
}

/** A fresh profile every time (a persistent context on a new, empty user data directory). */
export async function launchBrowser(
  executablePath: string,
  options: { colorScheme?: 'light' | 'dark'; width?: number; height?: number } = {},
): Promise<Browser> {
  const profile = mkdtempSync(join(tmpdir(), 'console-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    args: CHROMIUM_FLAGS as string[],
    viewport: { width: options.width ?? 1400, height: options.height ?? 1000 },
    colorScheme: options.colorScheme ?? 'light',
    timeout: 60_000,
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
