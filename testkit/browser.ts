/** Headless Chromium (Debian's) driven by playwright-core, with the flags a closed network needs. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';
// @ts-expect-error plain ESM script without type declarations
import { CHROMIUM_FLAGS } from '../scripts/install-chromium.mjs';

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

/**
 * The page's document as page functions see it, typed loosely: this project's type check has no DOM
 * library. Page functions must use `(globalThis as unknown as PageGlobals).document` inline (they
 * are serialized; string predicates would need 'unsafe-eval', which the console's CSP refuses).
 */
export interface PageGlobals {
  document: {
    body: { textContent: string | null };
    activeElement: { id: string; textContent: string | null } | null;
    getElementById(id: string): { textContent: string | null } | null;
    querySelector(selector: string): { textContent: string | null } | null;
  };
}
