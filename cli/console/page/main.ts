/**
 * The console page: plain DOM, no framework (the page is one view re-drawn from server-sent
 * snapshots; a keyed replace of the blocks whose data changed keeps focus and open selects alive).
 * Text is always set with textContent, never parsed as HTML.
 */
import type {
  ActionRequest,
  ActionResult,
  ClusterView,
  ConsoleView,
  FailoverView,
  GroupView,
  MonitorView,
  NodeView,
  RequestItem,
} from '../view';

const meta = (name: string) => document.querySelector<HTMLMetaElement>(`meta[name="${name}"]`)?.content ?? '';
const TOKEN = meta('console-token');
const READ_ONLY = meta('console-read-only') === 'true' || TOKEN === '';

const main = document.getElementById('main') as HTMLElement;
const live = document.getElementById('live') as HTMLElement;
const where = document.getElementById('where') as HTMLElement;
const banner = document.getElementById('banner') as HTMLElement;
const toast = document.getElementById('toast') as HTMLElement;
const dialog = document.getElementById('confirm') as HTMLDialogElement;

/** Server clock minus ours: lease ages are counted on the server's clock, as `failoverctl status` does. */
let offsetMs = 0;
let view: ConsoleView | undefined;
let busy = false;

// ------------------------------------------------------------------------------------------------
// DOM helpers

type Child = Node | string | null | undefined | false;
function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  props: Record<string, string | number | boolean | undefined> = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === false) continue;
    if (k === 'class') el.className = String(v);
    else if (k === 'text') el.textContent = String(v);
    // Through the CSSOM: the page's Content-Security-Policy refuses style attributes.
    else if (k === 'style') el.style.cssText = String(v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children) if (c !== null && c !== undefined && c !== false) el.append(c);
  return el;
}

function duration(ms: number | null): string {
  if (ms === null || !Number.isFinite(ms)) return '–';
  if (ms < 0) return `${(ms / 1000).toFixed(1)} s (clock ahead)`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(2)} s`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ${Math.floor((ms % 60_000) / 1000)} s`;
  if (ms < 86_400_000) return `${Math.floor(ms / 3_600_000)} h ${Math.floor((ms % 3_600_000) / 60_000)} min`;
  return `${Math.floor(ms / 86_400_000)} d ${Math.floor((ms % 86_400_000) / 3_600_000)} h`;
}

function clock(ms: number): string {
  return new Date(ms).toISOString().replace('T', ' ').slice(0, 19);
}

const serverNow = () => Date.now() + offsetMs;

/** A status word with a shape as well as a colour (never colour alone). */
function badge(word: string, tone: string, label?: string): HTMLElement {
  const icon = { ok: '●', warn: '▲', bad: '■', info: '◆', muted: '○' }[tone] ?? '●';
  return h(
    'span',
    { class: `badge ${tone}`, ...(label ? { 'aria-label': label } : {}) },
    h('span', { 'aria-hidden': 'true', text: icon }),
    ` ${word}`,
  );
}

function phaseTone(phase: string): string {
  return phase === 'Online' ? 'ok' : phase === 'Failed' ? 'bad' : phase === 'Offline' ? 'muted' : 'warn';
}

function statusTone(status: string): string {
  return status === 'ok' || status === 'running'
    ? 'ok'
    : status === 'error' || status === 'drift' || status === 'fenced' || status === 'expired'
      ? 'bad'
      : status === 'warn' || status === 'leaving'
        ? 'warn'
        : 'muted';
}

// ------------------------------------------------------------------------------------------------
// Rendering: blocks keyed by id; a block is replaced only when its data changed.

interface Block {
  key: string;
  data: unknown;
  render: () => HTMLElement;
}

function patch(container: HTMLElement, blocks: Block[]): void {
  const old = new Map<string, HTMLElement>();
  for (const el of Array.from(container.children) as HTMLElement[])
    if (el.dataset.key) old.set(el.dataset.key, el);
  const active = document.activeElement as HTMLElement | null;
  const focusId = active?.id && container.contains(active) ? active.id : undefined;
  const next: HTMLElement[] = [];
  for (const b of blocks) {
    const sig = JSON.stringify(b.data);
    const prev = old.get(b.key);
    if (prev && prev.dataset.sig === sig) {
      next.push(prev);
      continue;
    }
    const el = b.render();
    el.dataset.key = b.key;
    el.dataset.sig = sig;
    // Keep what a keyboard user was doing: the same control chosen in a select, focus where it was.
    if (prev) {
      for (const s of Array.from(prev.querySelectorAll<HTMLSelectElement>('select[id]'))) {
        const twin = el.querySelector<HTMLSelectElement>(`#${CSS.escape(s.id)}`);
        if (twin && Array.from(twin.options).some((o) => o.value === s.value)) twin.value = s.value;
      }
    }
    next.push(el);
  }
  container.replaceChildren(...next);
  if (focusId && document.activeElement !== document.getElementById(focusId))
    document.getElementById(focusId)?.focus();
}

function render(v: ConsoleView): void {
  where.textContent = `table ${v.table} · ${v.clusters.length} cluster${v.clusters.length === 1 ? '' : 's'}${v.readOnly || READ_ONLY ? ' · read-only' : ''}`;
  banner.hidden = !v.error;
  banner.textContent = v.error ? `Cannot read the state table: ${v.error}` : '';
  main.setAttribute('aria-busy', 'false');
  if (v.clusters.length === 0) {
    patch(main, [
      {
        key: 'empty',
        data: v.table,
        render: () =>
          h('p', {
            class: 'empty',
            text: `No cluster in table ${v.table}: apply one with "failoverctl apply -f cluster.yaml".`,
          }),
      },
    ]);
    return;
  }
  patch(
    main,
    v.clusters.map((c) => ({ key: `cluster-${c.name}`, data: c.name, render: () => clusterShell(c) })),
  );
  for (const c of v.clusters) fillCluster(c);
  updateLeaseBars();
}

function clusterShell(c: ClusterView): HTMLElement {
  const id = `c-${c.name}`;
  return h(
    'section',
    { class: 'cluster', 'aria-labelledby': `${id}-title` },
    h('div', { class: 'cluster-head', 'data-part': 'head' }),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': `${id}-groups` },
      h('h3', { id: `${id}-groups`, text: 'Groups' }),
      h('div', { class: 'cards', 'data-part': 'groups' }),
    ),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': `${id}-nodes` },
      h('h3', { id: `${id}-nodes`, text: 'Nodes' }),
      h('div', { class: 'cards', 'data-part': 'nodes' }),
    ),
    h(
      'div',
      { class: 'two' },
      h(
        'section',
        { class: 'panel', 'aria-labelledby': `${id}-timeline` },
        h('h3', { id: `${id}-timeline`, text: 'Failovers' }),
        h('div', { 'data-part': 'timeline' }),
      ),
      h(
        'section',
        { class: 'panel', 'aria-labelledby': `${id}-requests` },
        h('h3', { id: `${id}-requests`, text: 'Pending requests' }),
        h('div', { 'data-part': 'requests' }),
      ),
    ),
  );
}

function part(section: HTMLElement, name: string): HTMLElement {
  return section.querySelector(`[data-part="${name}"]`) as HTMLElement;
}

function fillCluster(c: ClusterView): void {
  const section = main.querySelector<HTMLElement>(`[data-key="cluster-${CSS.escape(c.name)}"]`);
  if (!section) return;
  const id = `c-${c.name}`;
  patch(part(section, 'head'), [
    {
      key: 'head',
      data: [c.name, c.health, c.healthReasons, c.configVersion, c.region, c.error, c.leaseMs],
      render: () =>
        h(
          'div',
          {},
          h(
            'h2',
            { id: `${id}-title` },
            `cluster ${c.name} `,
            badge(
              c.health === 'ok' ? 'all groups online' : c.health,
              c.health === 'ok' ? 'ok' : c.health === 'critical' ? 'bad' : 'warn',
            ),
          ),
          h('p', {
            class: 'sub',
            text: `definition v${c.configVersion} · ${c.region || 'region from the environment'} · lease ${duration(c.leaseMs)}, heartbeat ${duration(c.heartbeatIntervalMs)}`,
          }),
          c.healthReasons.length > 0
            ? h('ul', { class: 'reasons' }, ...c.healthReasons.map((r) => h('li', { text: r })))
            : null,
          c.error ? h('p', { class: 'error', role: 'alert', text: c.error }) : null,
        ),
    },
  ]);
  patch(
    part(section, 'groups'),
    c.groups.map((g) => ({
      key: `g-${g.name}`,
      data: [g, c.nodes.map((n) => n.name)],
      render: () => groupCard(c, g),
    })),
  );
  patch(
    part(section, 'nodes'),
    c.nodes.map((n) => ({ key: `n-${n.name}`, data: n, render: () => nodeCard(c, n) })),
  );
  patch(part(section, 'timeline'), [
    { key: 'timeline', data: c.failovers, render: () => timeline(c.failovers) },
  ]);
  patch(part(section, 'requests'), [
    { key: 'requests', data: c.requests, render: () => requests(c, c.requests) },
  ]);
}

function row(label: string, ...value: Child[]): HTMLElement[] {
  return [h('dt', { text: label }), h('dd', {}, ...value)];
}

function monitorList(monitors: MonitorView[]): HTMLElement | string {
  if (monitors.length === 0) return 'none';
  return h(
    'ul',
    { class: 'chips' },
    ...monitors.map((m) =>
      h(
        'li',
        { title: m.detail },
        badge(`${m.name}: ${m.status}`, statusTone(m.status), `monitor ${m.name} ${m.status}: ${m.detail}`),
      ),
    ),
  );
}

function groupCard(c: ClusterView, g: GroupView): HTMLElement {
  const id = `g-${c.name}-${g.name}`;
  const since = g.since !== null ? duration(serverNow() - g.since) : '–';
  const card = h(
    'article',
    { class: `card group ${phaseTone(g.phase)}`, 'aria-labelledby': `${id}-title`, 'data-group': g.name },
    h(
      'header',
      {},
      h('h4', { id: `${id}-title`, text: g.name }),
      badge(g.phase, phaseTone(g.phase), `phase ${g.phase}`),
      g.mode !== 'auto' ? badge(g.mode, 'warn') : null,
    ),
    h(
      'dl',
      {},
      ...row('owner', h('strong', { class: 'owner', text: g.owner ?? 'none' })),
      ...row('epoch', String(g.epoch)),
      ...row('mode', g.mode === 'auto' ? 'auto' : `${g.mode} (reconcile observes only)`),
      ...row(
        'since',
        h('time', {
          datetime: g.since ? new Date(g.since).toISOString() : undefined,
          text: g.since ? `${clock(g.since)} (${since})` : '–',
        }),
      ),
      ...row('nodes', g.nodes.map((n) => (n === g.owner ? `${n} (owner)` : n)).join(' → ')),
      ...row(
        'entry points',
        g.entryPoints.length === 0
          ? 'none'
          : h(
              'ul',
              { class: 'entry-points' },
              ...g.entryPoints.map((e) =>
                h(
                  'li',
                  {},
                  badge(e.status, statusTone(e.status), `${e.type} ${e.name} ${e.status}`),
                  ` ${e.type} `,
                  h('code', { text: e.address }),
                  h('span', { class: 'detail', text: ` → ${e.detail}` }),
                ),
              ),
            ),
      ),
      ...(g.applications.length > 0
        ? row(
            'application',
            g.applications
              .map(
                (a) =>
                  `${a.name} on ${a.runningOn.join(', ') || 'no node'}${a.lastReportedOn.length > 0 ? ` (last reported on ${a.lastReportedOn.join(', ')}, whose lease ran out)` : ''}`,
              )
              .join('; '),
          )
        : []),
      ...row('monitors', monitorList(g.monitors)),
      ...(g.lockedBy ? row('reconciling', g.lockedBy) : []),
      ...(g.lastError ? row('last error', h('span', { class: 'error', text: g.lastError })) : []),
    ),
  );
  if (!READ_ONLY) card.append(groupActions(c, g, id));
  return card;
}

function groupActions(c: ClusterView, g: GroupView, id: string): HTMLElement {
  const others = g.nodes.filter((n) => n !== g.owner);
  const select = h(
    'select',
    { id: `${id}-to`, 'aria-label': `target node for moving ${g.name}` },
    ...g.nodes.map((n) => h('option', { value: n, text: n === g.owner ? `${n} (owner)` : n })),
  );
  if (others[0]) select.value = others[0];
  const button = (
    label: string,
    kind: ActionRequest['kind'],
    extra: () => Partial<ActionRequest>,
    text: () => string,
    cls = '',
  ) => {
    const b = h('button', { type: 'button', id: `${id}-${kind}`, class: cls, text: label });
    b.addEventListener('click', () =>
      act({ cluster: c.name, kind, group: g.name, ...extra() }, text(), label, b),
    );
    return b;
  };
  const maintenance = g.mode === 'maintenance';
  return h(
    'div',
    { class: 'actions', role: 'group', 'aria-label': `actions on group ${g.name}` },
    h('label', { for: `${id}-to`, class: 'move-label', text: 'Move to' }),
    select,
    button(
      'Move',
      'move',
      () => ({ to: select.value }),
      () =>
        `Move group ${g.name} of cluster ${c.name} from ${g.owner ?? 'nowhere'} to ${select.value}? The old owner is stopped first.`,
      'primary',
    ),
    button(
      'Start',
      'start',
      () => ({}),
      () => `Start group ${g.name} of cluster ${c.name} on the first eligible node?`,
    ),
    button(
      'Stop',
      'stop',
      () => ({}),
      () =>
        `Stop group ${g.name} of cluster ${c.name}? Its application stops and its entry points are taken down.`,
      'danger',
    ),
    maintenance
      ? button(
          'Resume',
          'resume',
          () => ({}),
          () => `Resume group ${g.name}: reconcile acts on it again?`,
        )
      : button(
          'Suspend',
          'suspend',
          () => ({}),
          () =>
            `Suspend group ${g.name} (maintenance): reconcile observes but changes nothing until you resume it?`,
        ),
  );
}

function nodeCard(c: ClusterView, n: NodeView): HTMLElement {
  const id = `n-${c.name}-${n.name}`;
  const bar = h(
    'div',
    {
      class: 'lease',
      role: 'meter',
      'aria-label': `lease age of ${n.name}`,
      'aria-valuemin': 0,
      'aria-valuemax': n.leaseMs,
      'data-sent-at': n.sentAt ?? '',
      'data-lease': n.leaseMs,
      'data-skew': c.maxClockSkewMs,
    },
    h('div', { class: 'fill' }),
  );
  return h(
    'article',
    { class: `card node ${statusTone(n.state)}`, 'aria-labelledby': `${id}-title`, 'data-node': n.name },
    h(
      'header',
      {},
      h('h4', { id: `${id}-title`, text: n.name }),
      badge(n.state, statusTone(n.state), `state ${n.state}`),
      n.isolated ? badge('isolated', 'bad') : null,
    ),
    h(
      'div',
      { class: 'lease-row' },
      bar,
      h('span', { class: 'lease-text', 'data-lease-text': '', text: '' }),
    ),
    h(
      'dl',
      {},
      ...row('AZ', n.az),
      ...row('instance', h('code', { text: n.instanceId }), ` ${n.instanceState ?? '(state not read yet)'}`),
      ...row('address', n.privateIp || '–'),
      ...row('watchdog', n.watchdog),
      ...row('isolation', n.isolated ? 'isolated: every witness failed' : 'not isolated'),
      ...row(
        'witnesses',
        n.witnesses.length === 0
          ? 'none'
          : h(
              'ul',
              { class: 'chips' },
              ...n.witnesses.map((w) =>
                h(
                  'li',
                  { title: w.detail ?? '' },
                  badge(w.target, w.ok ? 'ok' : 'bad', `witness ${w.target} ${w.ok ? 'answers' : 'fails'}`),
                ),
              ),
            ),
      ),
      ...row(
        'groups',
        n.groups.length === 0 ? 'none' : n.groups.map((g) => `${g.name}: ${g.state} @${g.epoch}`).join(', '),
      ),
      ...row('monitors', monitorList(n.monitors)),
      ...row('agent', n.agentVersion ?? '–'),
      ...(n.spot ? row('spot', h('span', { class: 'error', text: n.spot })) : []),
    ),
  );
}

/** Lease bars move between snapshots: age = server clock − last renewal. */
function updateLeaseBars(): void {
  for (const bar of Array.from(document.querySelectorAll<HTMLElement>('.lease'))) {
    const sentAt = Number(bar.dataset.sentAt || Number.NaN);
    const lease = Number(bar.dataset.lease);
    const skew = Number(bar.dataset.skew || 0);
    const text = bar.parentElement?.querySelector<HTMLElement>('[data-lease-text]');
    const fill = bar.firstElementChild as HTMLElement;
    if (!Number.isFinite(sentAt)) {
      fill.style.width = '0';
      bar.setAttribute('aria-valuetext', 'no renewal yet');
      if (text) text.textContent = 'no renewal yet';
      continue;
    }
    const age = serverNow() - sentAt;
    const ratio = Math.min(1, Math.max(0, age / lease));
    fill.style.width = `${(ratio * 100).toFixed(1)}%`;
    bar.dataset.tone = age > lease + skew ? 'bad' : ratio > 0.5 ? 'warn' : 'ok';
    const words = `${duration(age)} of ${duration(lease)}`;
    bar.setAttribute('aria-valuenow', String(Math.round(Math.min(age, lease))));
    bar.setAttribute('aria-valuetext', words);
    if (text) text.textContent = `lease age ${words}`;
  }
}

function timeline(items: FailoverView[]): HTMLElement {
  if (items.length === 0)
    return h('p', { class: 'empty', text: 'No change of owner in the audit log of the last 24 h.' });
  return h(
    'ol',
    { class: 'timeline' },
    ...items.map((f) => {
      const total = f.parts.reduce((s, p) => s + p.ms, 0) || 1;
      return h(
        'li',
        {
          class: `failover ${f.outcome === 'completed' ? 'ok' : f.outcome === 'failed' ? 'bad' : 'warn'}`,
          'data-group': f.group,
        },
        h(
          'p',
          { class: 'what' },
          h('time', { datetime: new Date(f.startedAt).toISOString(), text: clock(f.startedAt) }),
          ' ',
          h('strong', { text: `${f.group}: ${f.kind} ${f.from ?? '–'} → ${f.to}` }),
          ` (epoch ${f.epoch}) `,
          badge(f.outcome, f.outcome === 'completed' ? 'ok' : f.outcome === 'failed' ? 'bad' : 'warn'),
          f.totalMs !== null ? ` ${duration(f.totalMs)} after the decision` : '',
        ),
        h('p', { class: 'why', text: f.reason }),
        h(
          'div',
          { class: 'parts', 'aria-hidden': 'true' },
          ...f.parts.map((p, i) =>
            h('span', {
              class: `seg s${i % 8}`,
              style: `flex-grow:${Math.max(p.ms / total, 0.02)}`,
              title: `${p.label}: ${duration(p.ms)}`,
            }),
          ),
        ),
        h(
          'ul',
          { class: 'breakdown' },
          ...f.parts.map((p, i) =>
            h(
              'li',
              {},
              h('span', { class: `key s${i % 8}`, 'aria-hidden': 'true' }),
              `${p.label}: ${duration(p.ms)}`,
            ),
          ),
        ),
      );
    }),
  );
}

function requests(c: ClusterView, items: RequestItem[]): HTMLElement {
  if (items.length === 0)
    return h('p', { class: 'empty', text: 'None: reconcile has processed every request.' });
  return h(
    'table',
    { class: 'requests' },
    h('caption', { class: 'sr-only', text: `pending requests of cluster ${c.name}` }),
    h(
      'thead',
      {},
      h(
        'tr',
        {},
        h('th', { scope: 'col', text: 'request' }),
        h('th', { scope: 'col', text: 'group' }),
        h('th', { scope: 'col', text: 'by' }),
        h('th', { scope: 'col', text: 'waiting' }),
        h('th', { scope: 'col', text: '' }),
      ),
    ),
    h(
      'tbody',
      {},
      ...items.map((r) => {
        const cell = h('td', {});
        if (!READ_ONLY) {
          const b = h('button', {
            type: 'button',
            id: `cancel-${r.id}`,
            text: 'Cancel',
            'aria-label': `cancel ${r.kind} request ${r.id}`,
          });
          b.addEventListener('click', () =>
            act(
              { cluster: c.name, kind: 'cancel', id: r.id },
              `Cancel the ${r.kind} request ${r.id} for group ${r.group}?`,
              'Cancel request',
              b,
            ),
          );
          cell.append(b);
        }
        return h(
          'tr',
          {},
          h('td', {}, `${r.kind}${r.to ? ` → ${r.to}` : ''} `, h('code', { text: r.id })),
          h('td', { text: r.group }),
          h('td', { text: r.by ?? '–' }),
          h('td', { text: duration(serverNow() - r.createdAt) }),
          cell,
        );
      }),
    ),
  );
}

// ------------------------------------------------------------------------------------------------
// Actions: a confirmation, then the same request path as failoverctl.

function confirmAction(text: string, okLabel: string): Promise<boolean> {
  (document.getElementById('confirm-title') as HTMLElement).textContent = okLabel;
  (document.getElementById('confirm-text') as HTMLElement).textContent = text;
  (document.getElementById('confirm-ok') as HTMLButtonElement).textContent = okLabel;
  dialog.returnValue = '';
  dialog.showModal();
  (document.getElementById('confirm-cancel') as HTMLButtonElement).focus();
  return new Promise((resolve) =>
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true }),
  );
}

function say(message: string, tone: 'ok' | 'bad' | 'info'): void {
  toast.textContent = message;
  toast.dataset.tone = tone;
  toast.setAttribute('role', tone === 'bad' ? 'alert' : 'status');
  toast.classList.add('shown');
}

/** Focus back on the control that started an action, found by id: its card may have been redrawn. */
function refocus(origin: HTMLElement): void {
  const target = (origin.id && document.getElementById(origin.id)) || origin;
  if (document.contains(target)) target.focus();
}

async function act(
  request: ActionRequest,
  question: string,
  label: string,
  origin: HTMLElement,
): Promise<void> {
  if (busy) return;
  if (!(await confirmAction(question, label))) {
    refocus(origin);
    return;
  }
  busy = true;
  document.body.classList.add('busy');
  say(`${label}: sent, waiting for reconcile…`, 'info');
  try {
    const res = await fetch('/api/actions', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', 'X-Console-Token': TOKEN },
      body: JSON.stringify(request),
    });
    const result = (await res.json()) as ActionResult;
    say(`${label}: ${result.outcome}: ${result.message}`, result.ok ? 'ok' : 'bad');
  } catch (e) {
    say(`${label}: the console server did not answer (${(e as Error).message})`, 'bad');
  } finally {
    busy = false;
    document.body.classList.remove('busy');
    refocus(origin);
  }
}

// ------------------------------------------------------------------------------------------------
// Theme: system, light or dark, remembered.

const THEMES = ['system', 'light', 'dark'] as const;
function applyTheme(theme: (typeof THEMES)[number]): void {
  if (theme === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = theme;
  const b = document.getElementById('theme') as HTMLButtonElement;
  const next = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length];
  b.textContent = `theme: ${theme}`;
  b.setAttribute('aria-label', `Theme: ${theme} (switch to ${next})`);
}
let theme = (localStorage.getItem('failover-console-theme') as (typeof THEMES)[number] | null) ?? 'system';
applyTheme(theme);
document.getElementById('theme')?.addEventListener('click', () => {
  theme = THEMES[(THEMES.indexOf(theme) + 1) % THEMES.length]!;
  localStorage.setItem('failover-console-theme', theme);
  applyTheme(theme);
});

// ------------------------------------------------------------------------------------------------
// Live updates

function connect(): void {
  const events = new EventSource('/api/events');
  events.addEventListener('state', (e) => {
    view = JSON.parse((e as MessageEvent<string>).data) as ConsoleView;
    offsetMs = view.serverNow - Date.now();
    live.textContent = `live · ${new Date(view.serverNow).toISOString().slice(11, 19)} UTC`;
    live.dataset.tone = 'ok';
    render(view);
  });
  events.addEventListener('error', () => {
    live.textContent = 'disconnected: reconnecting…';
    live.dataset.tone = 'bad';
  });
}

setInterval(updateLeaseBars, 200);
connect();
