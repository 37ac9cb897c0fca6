/**
 * The web console in a real browser (Debian's headless Chromium through playwright-core) on the
 * sandbox's cluster: real agents, the real controller code, the emulator. The page shows every group
 * and node, follows a failover within 2 s of the table, moves a group when a move is clicked and
 * confirmed, and shows the controller's reason when it refuses one. Then the server's guards: the
 * session token, the Host check against DNS rebinding, cross-origin requests, read-only mode, and
 * `failoverctl console` itself as a process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { launchConsole } from '../../cli/console/command';
import type { ConsoleServer } from '../../cli/console/server';
import type { ConsoleView } from '../../cli/console/view';
import { Sandbox } from '../../sandbox/sandbox';
import { type Browser, launchBrowser, type PageGlobals } from '../../testkit/browser';

const REPO = join(import.meta.dirname, '..', '..');
const lines: string[] = [];
let sandbox: Sandbox;
let web: ConsoleServer;
let browser: Browser;
let page: Page;
/** The group each fault hits: the sandbox's first (whatever groups the sandbox runs). */
let group: string;
const aws = () => ({ region: 'us-east-1', endpoint: inject('awsEndpoint') });

/** The owner the page shows for a group. */
const shownOwner = (group: string) =>
  page.locator(`[data-group="${group}"] .owner`).first().textContent({ timeout: 10_000 });

async function ownerInTable(group: string): Promise<string | null> {
  return (await sandbox.store.getGroup('sandbox', group))?.owner ?? null;
}

/** Clicks an action of a group's card and confirms it in the dialog; returns the toast's text. */
async function clickAction(group: string, action: string, to?: string): Promise<string> {
  const card = page.locator(`article.group[data-group="${group}"]`);
  if (to) await card.locator('select').selectOption(to);
  await page.evaluate(() => {
    const toast = (globalThis as unknown as PageGlobals).document.getElementById('toast');
    if (toast) toast.textContent = '';
  });
  await card.getByRole('button', { name: action, exact: true }).click();
  const dialog = page.getByRole('dialog');
  await expect.poll(() => dialog.isVisible()).toBe(true);
  await dialog.getByRole('button', { name: action, exact: true }).click();
  // The toast says "sent" first, then the outcome.
  await page.waitForFunction(
    () => {
      const text = (globalThis as unknown as PageGlobals).document.getElementById('toast')?.textContent ?? '';
      return text !== '' && !/sent, waiting/.test(text);
    },
    undefined,
    { timeout: 45_000 },
  );
  return (await page.locator('#toast').textContent()) ?? '';
}

beforeAll(async () => {
  // Chromium first: its start is a burst of CPU that could starve the sandbox's agents of the time
  // they need to feed their 1 s watchdogs on a 2-core machine.
  browser = await launchBrowser(inject('chromium'));
  page = await browser.context.newPage();
  page.on('pageerror', (e) => lines.push(`page error: ${e.message}`));
  process.env.SANDBOX_EMULATOR_URL = inject('awsEndpoint');
  sandbox = new Sandbox({ say: (line) => lines.push(line) });
  await sandbox.start();
  const first = await sandbox.waitConsistent('node1', 60_000);
  expect(first.ms, lines.join('\n')).not.toBeNaN();
  group = sandbox.config.groups[0]!.name;
  web = await launchConsole({ table: sandbox.store.table, aws: aws(), port: 0, log: (l) => lines.push(l) });
}, 240_000);

afterAll(async () => {
  await browser?.close();
  await web?.close();
  await sandbox?.stop();
}, 60_000);

describe('the web console in Chromium', () => {
  it('loads on the sandbox cluster and shows every group and node', async () => {
    await page.goto(web.url);
    await page.locator('article.group').first().waitFor({ timeout: 15_000 });
    for (const g of sandbox.config.groups) {
      await expect.poll(() => page.locator(`article.group[data-group="${g.name}"]`).count()).toBe(1);
      expect(await shownOwner(g.name)).toBe(await ownerInTable(g.name));
    }
    for (const n of sandbox.config.nodes)
      await expect.poll(() => page.locator(`article.node[data-node="${n.name}"]`).count()).toBe(1);
    // The lease bar moves against the lease, and says so to assistive technology.
    const meter = page.getByRole('meter', { name: 'lease age of node1' });
    await expect.poll(() => meter.getAttribute('aria-valuetext')).toMatch(/ s of 2\.00 s$/);
    expect(await page.locator('#live').textContent()).toMatch(/^live/);
    expect(lines.filter((l) => l.startsWith('page error'))).toEqual([]);
  });

  it('shows a failover within 2 s of the table', async () => {
    const before = (await ownerInTable(group))!;
    let tableAt = 0;
    const watchTable = (async () => {
      for (let i = 0; i < 1200 && tableAt === 0; i++) {
        const owner = await ownerInTable(group);
        if (owner && owner !== before) tableAt = Date.now();
        else await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const watchPage = page
      .waitForFunction(
        ([g, was]) => {
          const owner = (globalThis as unknown as PageGlobals).document.querySelector(
            `[data-group="${g}"] .owner`,
          )?.textContent;
          return owner && owner !== was && owner !== 'none';
        },
        [group, before] as const,
        { timeout: 60_000, polling: 50 },
      )
      .then(() => Date.now());
    const scenario = await sandbox.silentCrash();
    expect(scenario.ok, scenario.detail).toBe(true);
    const [pageAt] = await Promise.all([watchPage, watchTable]);
    expect(tableAt).toBeGreaterThan(0);
    expect(pageAt - tableAt).toBeLessThan(2_000);
    expect(await shownOwner(group)).toBe(scenario.to);
    // The timeline has it, with its breakdown.
    const entry = page.locator(`.timeline li.failover[data-group="${group}"]`).first();
    await expect
      .poll(() => entry.textContent(), { timeout: 10_000 })
      .toMatch(new RegExp(`db: failover ${scenario.from} → ${scenario.to}`));
    expect(await entry.textContent()).toMatch(/detection .*decision: .*vip .*application start/s);
  });

  it('moves the group when a move is clicked and confirmed', async () => {
    const from = (await ownerInTable(group))!;
    const to = sandbox.config.groups[0]!.nodes.find((n) => n !== from)!;
    const toast = await clickAction(group, 'Move', to);
    expect(toast).toMatch(/Move: done/);
    expect(await ownerInTable(group)).toBe(to);
    await expect.poll(() => shownOwner(group), { timeout: 5_000 }).toBe(to);
    // The entry points and the application follow (every group of the sandbox expected on `to`
    // only when it has one group; with more, the others stay where they are).
    if (sandbox.config.groups.length === 1) {
      const consistent = await sandbox.waitConsistent(to, 30_000);
      expect(consistent.ms, JSON.stringify(consistent.last)).not.toBeNaN();
    }
  });

  it("shows the controller's reason when it refuses a move", async () => {
    expect(await clickAction(group, 'Suspend')).toMatch(/Suspend: done/);
    const owner = (await ownerInTable(group))!;
    const other = sandbox.config.groups[0]!.nodes.find((n) => n !== owner)!;
    const toast = await clickAction(group, 'Move', other);
    expect(toast).toContain(
      `Move: rejected: ${group}: group ${group} is in maintenance; run "failoverctl resume ${group}" first`,
    );
    expect(await page.locator('#toast').getAttribute('role')).toBe('alert');
    expect(await ownerInTable(group)).toBe(owner);
    expect(await clickAction(group, 'Resume')).toMatch(/Resume: done/);
  });

  it('keeps the keyboard usable: the confirmation takes focus, Escape cancels and gives it back', async () => {
    const move = page
      .locator(`article.group[data-group="${group}"]`)
      .getByRole('button', { name: 'Move', exact: true });
    await move.focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByRole('dialog').isVisible()).toBe(true);
    expect(await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.id)).toBe(
      'confirm-cancel',
    );
    await page.keyboard.press('Escape');
    await expect.poll(() => page.getByRole('dialog').isVisible()).toBe(false);
    expect(
      await page.evaluate(() => (globalThis as unknown as PageGlobals).document.activeElement?.textContent),
    ).toBe('Move');
  });
});

describe('the console server', () => {
  const post = (body: unknown, headers: Record<string, string> = {}, url = web.url) =>
    fetch(new URL('/api/actions', url), {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });
  const move = () => ({ cluster: 'sandbox', kind: 'move', group, to: 'node1' });

  it('refuses an action without the session token, from another origin, or as a form post', async () => {
    const requestsBefore = (await sandbox.store.listRequests('sandbox')).length;
    const none = await post(move());
    expect(none.status).toBe(403);
    expect(((await none.json()) as { message: string }).message).toMatch(/session token/);
    expect((await post(move(), { 'x-console-token': 'guess' })).status).toBe(403);
    const crossSite = await post(move(), { 'x-console-token': web.token, origin: 'https://evil.example' });
    expect(crossSite.status).toBe(403);
    const form = await fetch(new URL('/api/actions', web.url), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-console-token': web.token },
      body: `cluster=sandbox&kind=stop&group=${group}`,
    });
    expect(form.status).toBe(415);
    expect((await sandbox.store.listRequests('sandbox')).length).toBe(requestsBefore);
    expect(await ownerInTable(group)).not.toBeNull();
  });

  it('answers only to an IP address or localhost in the Host header (DNS rebinding)', async () => {
    const { request } = await import('node:http');
    const status = (host: string) =>
      new Promise<number>((resolve, reject) => {
        const u = new URL(web.url);
        request({ host: u.hostname, port: u.port, path: '/', headers: { host } }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        })
          .on('error', reject)
          .end();
      });
    const port = new URL(web.url).port;
    expect(await status(`127.0.0.1:${port}`)).toBe(200);
    expect(await status(`localhost:${port}`)).toBe(200);
    expect(await status(`attacker.example:${port}`)).toBe(421);
  });

  it('serves the page with a strict Content-Security-Policy and the token, and the snapshot as JSON', async () => {
    const res = await fetch(web.url);
    expect(res.headers.get('content-security-policy')).toMatch(/script-src 'self'/);
    expect(await res.text()).toContain(`content="${web.token}"`);
    const state = (await (await fetch(new URL('/api/state', web.url))).json()) as ConsoleView;
    expect(state.clusters.map((c) => c.name)).toEqual(['sandbox']);
    expect(state.clusters[0]!.nodes.map((n) => n.name).sort()).toEqual(['node1', 'node2']);
  });

  it('changes nothing when read-only: no buttons, no token, actions refused', async () => {
    const readOnly = await launchConsole({ table: sandbox.store.table, aws: aws(), port: 0, readOnly: true });
    try {
      const html = await (await fetch(readOnly.url)).text();
      expect(html).not.toContain(readOnly.token);
      const res = await post(move(), { 'x-console-token': readOnly.token }, readOnly.url);
      expect(res.status).toBe(403);
      expect(((await res.json()) as { message: string }).message).toMatch(/read-only/);
      const p = await browser.context.newPage();
      await p.goto(readOnly.url);
      await p.locator('article.group').first().waitFor({ timeout: 15_000 });
      expect(await p.getByRole('button', { name: 'Move', exact: true }).count()).toBe(0);
      await p.close();
    } finally {
      await readOnly.close();
    }
  });

  it('runs as `failoverctl console` on loopback and warns when told to listen elsewhere', async () => {
    const start = (args: string[]) => {
      const child = spawn(
        process.execPath,
        [join(REPO, 'bin', 'failoverctl.js'), '--table', sandbox.store.table, ...args],
        {
          env: {
            ...process.env,
            AWS_ENDPOINT_URL: inject('awsEndpoint'),
            AWS_REGION: 'us-east-1',
            AWS_ACCESS_KEY_ID: 'sandbox',
            AWS_SECRET_ACCESS_KEY: 'sandbox',
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      );
      let out = '';
      child.stdout?.on('data', (d) => {
        out += d;
      });
      child.stderr?.on('data', (d) => {
        out += d;
      });
      return { child, output: () => out };
    };
    const stop = async (child: ChildProcess) => {
      child.kill('SIGTERM');
      const [code] = await once(child, 'exit');
      return code;
    };
    const loopback = start(['console', '--port', '0']);
    await expect
      .poll(loopback.output, { timeout: 30_000 })
      .toMatch(/failover console on http:\/\/127\.0\.0\.1:\d+\//);
    const url = /(http:\/\/127\.0\.0\.1:\d+\/)/.exec(loopback.output())![1]!;
    expect((await fetch(url)).status).toBe(200);
    expect(loopback.output()).not.toMatch(/warning/);
    expect(await stop(loopback.child)).toBe(0);

    const everywhere = start(['console', '--port', '0', '--listen', '0.0.0.0', '--read-only']);
    await expect.poll(everywhere.output, { timeout: 30_000 }).toMatch(/failover console on/);
    expect(everywhere.output()).toMatch(/warning: listening on 0\.0\.0\.0, not loopback/);
    expect(await stop(everywhere.child)).toBe(0);
  });
});
