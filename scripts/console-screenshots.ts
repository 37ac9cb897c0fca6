/**
 * The README's screenshots of the web console (docs/console-light.png, docs/console-dark.png): the
 * demo's sandbox (its groups) after a start and a silent crash, in Debian's headless Chromium.
 *
 *   npx tsx scripts/console-screenshots.ts [--out docs]
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { launchConsole } from '../cli/console/command';
import { DEMO_SHAPES } from '../sandbox/network';
import { Sandbox } from '../sandbox/sandbox';
import { launchBrowser, type PageGlobals } from '../testkit/browser';
// @ts-expect-error plain ESM script without type declarations
import { ensureChromium } from './install-chromium.mjs';

const { values } = parseArgs({ options: { out: { type: 'string', default: 'docs' } } });
mkdirSync(values.out, { recursive: true });
const chromium: string = ensureChromium();
// Both browsers before the sandbox: Chromium's start is a burst of CPU that could starve the
// sandbox's agents of the time they need to feed their 1 s watchdogs on a 2-core machine.
const browsers = {
  light: await launchBrowser(chromium, { colorScheme: 'light', width: 1360, height: 900 }),
  dark: await launchBrowser(chromium, { colorScheme: 'dark', width: 1360, height: 900 }),
};
const sandbox = new Sandbox({ say: (line) => console.error(line), groups: DEMO_SHAPES });
await sandbox.start();
try {
  await sandbox.waitConsistent('node1', 60_000);
  await sandbox.silentCrash();
  const endpoint = await sandbox.store.client.config.endpoint?.();
  const aws = {
    region: 'us-east-1',
    endpoint: `${endpoint!.protocol}//${endpoint!.hostname}:${endpoint!.port}`,
  };
  const web = await launchConsole({ table: sandbox.store.table, aws, port: 0 });
  for (const scheme of ['light', 'dark'] as const) {
    const browser = browsers[scheme];
    const page = await browser.context.newPage();
    await page.goto(web.url);
    await page.locator('.timeline li').first().waitFor({ timeout: 20_000 });
    // Entry points are described every 5 s: wait until they say where they point.
    await page.waitForFunction(
      () => !(globalThis as unknown as PageGlobals).document.body.textContent?.includes('not checked yet'),
      undefined,
      { timeout: 20_000 },
    );
    // A settled cluster (a transient monitor error after the failover is repaired within seconds).
    await page
      .getByText('all groups online')
      .first()
      .waitFor({ timeout: 30_000 })
      .catch(() => console.error('the cluster did not settle within 30 s; taking the screenshot as it is'));
    if (scheme === 'dark') {
      // The confirmation a move asks for.
      const card = page.locator('article.group').first();
      await card.getByRole('button', { name: 'Move', exact: true }).click();
    }
    await page.waitForTimeout(500);
    const file = join(values.out, `console-${scheme}.png`);
    await page.screenshot({ path: file, fullPage: scheme === 'light' });
    console.error(`wrote ${file}`);
    await browser.close();
  }
  await web.close();
} finally {
  await sandbox.stop();
}
