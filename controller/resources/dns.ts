/**
 * dns resource: a Route 53 A record holding the active node's private IP (or a common address such
 * as the VIP or the EIP) with the definition's TTL. Read before write (ListResourceRecordSets,
 * memoized per reconcile): an UPSERT is sent only when the record is missing or differs. DELETE at
 * deactivation (`deleteOnDeactivate`) only while the record still holds this node's address,
 * with the exact record set as read, as Route 53 requires.
 *
 * The checks of a reconcile's first round (a cache shared by every group) read all of the cluster's
 * records of a zone in one listing (pages of 300) rather than one call per record: Route 53 allows
 * five requests a second per account, so 1,000 groups checked one by one would take minutes. For the
 * same reason, groups activating together (a zone outage) read the zone's listing together before
 * they write, and their UPSERTs go out per hosted zone in one ChangeResourceRecordSets (batcher.ts):
 * up to 500 (an UPSERT counts as two of the 1,000 ResourceRecord elements a request may hold), each
 * group fenced before its change joins the batch. A batch Route 53 refuses as a whole (one invalid
 * change fails them all) is sent again change by change, so each group gets its own answer.
 */
import { setTimeout as sleepFor } from 'node:timers/promises';
import {
  ChangeResourceRecordSetsCommand,
  GetChangeCommand,
  GetHostedZoneCommand,
  ListResourceRecordSetsCommand,
  type ResourceRecordSet,
  type Route53Client,
  type RRType,
} from '@aws-sdk/client-route-53';
import { awsErrorCode } from '../../shared/aws/errors';
import type { Settled } from '../../shared/base/coalesce';
import { DeadlineExceededError, InvalidRequestError } from '../../shared/base/errors';
import type { DnsResource, NodeConfig, ResourceConfig } from '../../shared/config/schema';
import type { CheckResult } from '../../shared/core/model';
import type {
  ActionOutcome,
  CheckRequest,
  DescribeCache,
  PreflightContext,
  ResourceDriver,
  ResourceRequest,
} from '../../shared/core/ports';
import { TargetBatcher } from './batcher';
import { memo, SharedDescribeCache } from './describe-cache';
import { checkError, DnsChangeNotInsyncError, mapped, route53Error, wrongType } from './errors';

export interface DnsOptions {
  /** Waits between GetChange polls; rejects when `signal` aborts. A parameter for tests. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Clock for the INSYNC deadline (ms). */
  now?: () => number;
  /** First GetChange poll interval; it doubles up to `maxPollMs`. */
  pollMs?: number;
  maxPollMs?: number;
}

/** `/hostedzone/Z123` and `Z123` name the same zone; messages and cache keys use the bare id. */
export function normalizeHostedZoneId(id: string): string {
  return id.replace(/^\/?hostedzone\//, '');
}

/**
 * The dns driver over one Route 53 client.
 * - activate: UPSERT when the record is missing or differs (value or TTL); then, with `waitInsync`,
 *   polls GetChange with backoff until INSYNC or `waitTimeoutSec` (DNS_CHANGE_NOT_INSYNC);
 * - deactivate: DELETE when `deleteOnDeactivate` and the record holds this node's address; a
 *   record already gone is fine;
 * - check: `drift` unless the record exists with exactly the expected single address.
 */
export function createDnsDriver(route53: Route53Client, options: DnsOptions = {}): ResourceDriver {
  const opts: Required<DnsOptions> = {
    sleep: (ms, signal) => sleepFor(ms, undefined, { signal }),
    now: () => Date.now(),
    pollMs: 1_000,
    maxPollMs: 10_000,
    ...options,
  };
  const upserts = new TargetBatcher<Upsert, ChangeInfo>(
    (zone, batch, signal) => sendUpserts(route53, zone, batch, signal),
    {
      maxBatch: UPSERTS_PER_BATCH,
    },
  );
  return {
    activate: (req) => activate(route53, req, opts, upserts),
    deactivate: (req) => deactivate(route53, req),
    check: (req) => check(route53, req).catch(checkError),
    preflight: (ctx) => preflight(route53, ctx),
  };
}

/** `failoverctl doctor`: the hosted zone exists and the record name lies inside it. */
async function preflight(route53: Route53Client, ctx: PreflightContext): Promise<void> {
  const r = dnsOf(ctx.resource);
  const id = normalizeHostedZoneId(r.hostedZoneId);
  const check = `${ctx.label} hosted zone ${id}`;
  try {
    const zone = await route53.send(new GetHostedZoneCommand({ Id: id }), { abortSignal: ctx.signal });
    const zoneName = zone.HostedZone?.Name ?? '';
    const fits = r.recordName === zoneName || r.recordName.endsWith(`.${zoneName}`);
    ctx.report(
      fits ? 'ok' : 'fail',
      check,
      fits
        ? `${zoneName}${zone.HostedZone?.Config?.PrivateZone ? ' (private)' : ''}`
        : `${r.recordName} is not inside the zone ${zoneName}`,
    );
  } catch (e) {
    if (awsErrorCode(e) === 'NoSuchHostedZone')
      ctx.report('fail', check, 'no such hosted zone; fix hostedZoneId');
    else throw e;
  }
}

function dnsOf(resource: ResourceConfig): DnsResource {
  if (resource.type !== 'dns') throw wrongType('dns', resource);
  return resource;
}

/** The address the record holds while `node` is active. */
function valueFor(r: DnsResource, node: NodeConfig): string {
  const value = r.ip ?? node.privateIp;
  if (!value)
    throw new InvalidRequestError(
      `dns resource ${r.name} publishes the active node's privateIp, but node ${node.name} has none: set privateIp on the node or ip on the resource`,
      'DNS_VALUE_MISSING',
    );
  return value;
}

const recordKey = (zone: string, name: string) => `route53:ListResourceRecordSets:${zone}:${name}:A`;

// Route 53 answers lowercase names with the trailing dot; the definition is normalized the same way.
const sameName = (a: string | undefined, b: string) => !!a && `${a.toLowerCase().replace(/\.$/, '')}.` === b;

const valuesOf = (rec: ResourceRecordSet) =>
  (rec.ResourceRecords ?? []).map((v) => v.Value).filter((v): v is string => !!v);

function show(rec: ResourceRecordSet): string {
  const values = valuesOf(rec);
  if (values.length > 0) return values.join(', ');
  return rec.AliasTarget ? `an alias to ${rec.AliasTarget.DNSName}` : 'no value';
}

const zoneKey = (zone: string) => `route53:ListResourceRecordSets:${zone}:*`;
/** Records per ListResourceRecordSets page (Route 53's largest). */
const LISTING_PAGE = 300;

/** Route 53 lists a zone by name with the labels reversed (com.example.www), then by type. */
const listingOrder = (name: string) => name.toLowerCase().replace(/\.$/, '').split('.').reverse().join('.');

/** Per definition object: each hosted zone's record names of the cluster, in listing order. */
const zoneNames = new WeakMap<CheckRequest['config'], Map<string, string[]>>();

function recordNamesOf(config: CheckRequest['config'], zone: string): string[] {
  let byZone = zoneNames.get(config);
  if (!byZone) {
    const sets = new Map<string, Set<string>>();
    for (const g of config.groups)
      for (const r of g.resources) {
        if (r.type !== 'dns') continue;
        const z = normalizeHostedZoneId(r.hostedZoneId);
        sets.set(z, (sets.get(z) ?? new Set()).add(r.recordName));
      }
    byZone = new Map(
      [...sets].map(([z, names]) => {
        const sorted = [...names].sort((a, b) => {
          const x = listingOrder(a);
          const y = listingOrder(b);
          return x < y ? -1 : x > y ? 1 : 0;
        });
        return [z, sorted];
      }),
    );
    zoneNames.set(config, byZone);
  }
  return byZone.get(zone) ?? [];
}

/**
 * The cluster's simple A records in `zone` by name, read in one listing from the first of its names
 * to the last (at most a few pages beyond what the names need). `complete`: the listing covered
 * every name, so a name not in the map has no such record; otherwise a name not in the map may lie
 * outside what was read, and the caller asks for it alone.
 */
function readZone(
  route53: Route53Client,
  cache: DescribeCache,
  zone: string,
  names: readonly string[],
  signal: AbortSignal,
): Promise<{ records: Map<string, ResourceRecordSet>; complete: boolean }> {
  return memo(cache, zoneKey(zone), async () => {
    const wanted = new Set(names);
    const last = listingOrder(names[names.length - 1] ?? '');
    const maxPages = 2 * Math.ceil(names.length / LISTING_PAGE) + 1;
    const found = new Map<string, ResourceRecordSet>();
    let complete = false;
    let next: { name?: string; type?: string; id?: string } = { name: names[0] };
    for (let page = 0; page < maxPages; page++) {
      const res = await mapped(
        () =>
          route53.send(
            new ListResourceRecordSetsCommand({
              HostedZoneId: zone,
              StartRecordName: next.name,
              ...(next.type ? { StartRecordType: next.type as RRType } : {}),
              ...(next.id ? { StartRecordIdentifier: next.id } : {}),
              MaxItems: LISTING_PAGE,
            }),
            { abortSignal: signal },
          ),
        (e) =>
          route53Error(e, 'route53:ListResourceRecordSets', `hosted zone ${zone}`, { hostedZoneId: zone }),
      );
      const sets = res.ResourceRecordSets ?? [];
      for (const set of sets) {
        const name = set.Name ? `${set.Name.toLowerCase().replace(/\.$/, '')}.` : '';
        if (set.Type === 'A' && !set.SetIdentifier && wanted.has(name) && !found.has(name))
          found.set(name, set);
      }
      const tail = sets[sets.length - 1]?.Name;
      if (!res.IsTruncated || found.size === wanted.size || (tail && listingOrder(tail) > last)) {
        complete = true;
        break;
      }
      next = {
        ...(res.NextRecordName ? { name: res.NextRecordName } : {}),
        ...(res.NextRecordType ? { type: res.NextRecordType } : {}),
        ...(res.NextRecordIdentifier ? { id: res.NextRecordIdentifier } : {}),
      };
      if (!next.name) break;
    }
    return { records: found, complete };
  });
}

/** The record for a check: from the zone's listing when the cache is shared by every group. */
async function checkedRecord(
  route53: Route53Client,
  req: CheckRequest,
  r: DnsResource,
): Promise<ResourceRecordSet | undefined> {
  const zone = normalizeHostedZoneId(r.hostedZoneId);
  const names = req.shared ? recordNamesOf(req.config, zone) : [];
  if (names.length > 1) {
    const listed = (await readZone(route53, req.cache, zone, names, req.signal)).records.get(r.recordName);
    if (listed) return listed;
  }
  return readRecord(route53, req.cache, r, req.signal);
}

/** The simple (non-weighted, non-failover) A record of that name, or undefined. */
function readRecord(
  route53: Route53Client,
  cache: DescribeCache,
  r: DnsResource,
  signal: AbortSignal,
): Promise<ResourceRecordSet | undefined> {
  const zone = normalizeHostedZoneId(r.hostedZoneId);
  return memo(cache, recordKey(zone, r.recordName), async () => {
    const res = await mapped(
      () =>
        route53.send(
          new ListResourceRecordSetsCommand({
            HostedZoneId: zone,
            StartRecordName: r.recordName,
            StartRecordType: 'A',
            // Records with a SetIdentifier share the name; the listing starts at ours in any case.
            MaxItems: 10,
          }),
          { abortSignal: signal },
        ),
      (e) =>
        route53Error(e, 'route53:ListResourceRecordSets', `hosted zone ${zone}`, {
          resource: r.name,
          hostedZoneId: zone,
          recordName: r.recordName,
        }),
    );
    return res.ResourceRecordSets?.find(
      (s) => sameName(s.Name, r.recordName) && s.Type === 'A' && !s.SetIdentifier,
    );
  });
}

/**
 * The record before an activation writes it: from the zone's listing when this reconcile's groups
 * share their reads (read once for all of those activating together), else on its own.
 */
async function recordBeforeWrite(
  route53: Route53Client,
  req: ResourceRequest,
  r: DnsResource,
): Promise<ResourceRecordSet | undefined> {
  const zone = normalizeHostedZoneId(r.hostedZoneId);
  const names = req.cache instanceof SharedDescribeCache ? recordNamesOf(req.config, zone) : [];
  if (names.length > 1) {
    const listing = await readZone(route53, req.cache, zone, names, req.signal);
    const listed = listing.records.get(r.recordName);
    if (listed || listing.complete) return listed;
  }
  return readRecord(route53, req.cache, r, req.signal);
}

/** An UPSERT of one group's record, as its batch carries it. */
interface Upsert {
  set: ResourceRecordSet;
  /** "orders/db epoch 7: node2 active" */
  why: string;
  /** Its group's lock check (MutationContext.assertMayStart), before it is sent on its own. */
  recheck?: () => void;
}

interface ChangeInfo {
  id: string | undefined;
  status: string | undefined;
  /** Records in the request that carried this one. */
  batched: number;
}

/** An UPSERT counts as two of the 1,000 ResourceRecord elements of one ChangeResourceRecordSets. */
const MAX_UPSERTS_PER_CHANGE = 500;
/**
 * The changes one batch carries: every one is fenced (a conditional write) right before the batch is
 * sent, and the batch waits for all of them. 500 fences behind a busy table (a zone outage writes
 * every group at once) outlast the invocation: in the 1,000-group AZ outage bench every item of such
 * a batch reached its deadline before the call, and one ChangeResourceRecordSets was made in 240 s.
 * Batches of 64 (the store's group writes in flight) are fenced in one wave and go out in turn.
 */
const UPSERTS_PER_BATCH = Math.min(MAX_UPSERTS_PER_CHANGE, 64);

/** One zone's UPSERTs in one request; a request Route 53 refuses as a whole is sent change by change. */
async function sendUpserts(
  route53: Route53Client,
  zone: string,
  batch: Upsert[],
  signal: AbortSignal,
): Promise<Settled<ChangeInfo>[]> {
  const send = async (items: Upsert[]): Promise<ChangeInfo> => {
    const comment =
      items.length === 1
        ? `failover ${items[0]!.why}`
        : `failover: ${items.length} records: ${items.map((u) => u.why).join('; ')}`;
    const res = await route53.send(
      new ChangeResourceRecordSetsCommand({
        HostedZoneId: zone,
        ChangeBatch: {
          Comment: comment.slice(0, 256),
          Changes: items.map((u) => ({ Action: 'UPSERT', ResourceRecordSet: u.set })),
        },
      }),
      { abortSignal: signal },
    );
    return { id: res.ChangeInfo?.Id, status: res.ChangeInfo?.Status, batched: items.length };
  };
  try {
    const info = await send(batch);
    return batch.map(() => ({ ok: true, value: info }));
  } catch (e) {
    if (batch.length === 1 || signal.aborted) return batch.map(() => ({ ok: false, error: e }));
    const out: Settled<ChangeInfo>[] = [];
    for (const u of batch) {
      try {
        // Each re-send is a call of its own, some time after the batch's fences: its lock must
        // still outlast it (a stall here would otherwise send a change past the lock).
        u.recheck?.();
        out.push({ ok: true, value: await send([u]) });
      } catch (error) {
        out.push({ ok: false, error });
      }
    }
    return out;
  }
}

async function activate(
  route53: Route53Client,
  req: ResourceRequest,
  opts: Required<DnsOptions>,
  upserts: TargetBatcher<Upsert, ChangeInfo>,
): Promise<ActionOutcome> {
  const r = dnsOf(req.resource);
  const zone = normalizeHostedZoneId(r.hostedZoneId);
  const value = valueFor(r, req.node);
  const rec = await recordBeforeWrite(route53, req, r);
  const wanted = `${r.recordName} A ${value} (TTL ${r.ttl})`;
  if (rec && !rec.AliasTarget && valuesOf(rec).join() === value && rec.TTL === r.ttl)
    return { changed: false, detail: `${wanted}: already` };

  let changeId: string | undefined;
  let status: string | undefined;
  let batched = 1;
  try {
    const info = await mapped(
      () =>
        upserts.submit(
          zone,
          r.recordName,
          {
            set: { Name: r.recordName, Type: 'A', TTL: r.ttl, ResourceRecords: [{ Value: value }] },
            why: `${req.cluster}/${req.group} epoch ${req.epoch}: ${req.node.name} active`,
            ...(req.assertMayStart ? { recheck: req.assertMayStart } : {}),
          },
          req.signal,
          // Fenced right before its zone's batch is sent: every change of a batch has its fence,
          // and its lock check again once the batch's fences are all done.
          req.beforeMutation,
          req.assertMayStart,
        ),
      (e) => route53Error(e, 'route53:ChangeResourceRecordSets', `hosted zone ${zone}`, subject(r, zone)),
    );
    changeId = info.id;
    status = info.status;
    batched = info.batched;
  } finally {
    req.cache.delete(recordKey(zone, r.recordName));
    req.cache.delete(zoneKey(zone));
  }
  const was = rec ? `${show(rec)} (TTL ${rec.TTL ?? '-'})` : 'none';
  let detail = `${r.recordName} A: ${was} -> ${value} (TTL ${r.ttl})${batched > 1 ? `, in one change with ${batched - 1} other records` : ''}`;
  if (r.waitInsync && changeId) detail += await waitInsync(route53, req, r, changeId, status, opts);
  return { changed: true, detail };
}

/** Polls GetChange with backoff until INSYNC; throws DNS_CHANGE_NOT_INSYNC at waitTimeoutSec. */
async function waitInsync(
  route53: Route53Client,
  req: ResourceRequest,
  r: DnsResource,
  changeId: string,
  first: string | undefined,
  opts: Required<DnsOptions>,
): Promise<string> {
  const started = opts.now();
  const deadline = started + r.waitTimeoutSec * 1000;
  let status = first;
  let delay = opts.pollMs;
  while (status !== 'INSYNC') {
    const left = deadline - opts.now();
    if (left <= 0)
      throw new DnsChangeNotInsyncError(
        changeId,
        r.recordName,
        status ?? 'PENDING',
        r.waitTimeoutSec,
        r.name,
      );
    try {
      await opts.sleep(Math.min(delay, left), req.signal);
    } catch (e) {
      if (!req.signal.aborted) throw e;
      throw new DeadlineExceededError(
        `waiting for Route 53 change ${changeId} of ${r.recordName} was aborted at the reconcile deadline; the record is written`,
        { cause: e },
      );
    }
    delay = Math.min(delay * 2, opts.maxPollMs);
    const res = await mapped(
      () => route53.send(new GetChangeCommand({ Id: changeId }), { abortSignal: req.signal }),
      (e) =>
        route53Error(
          e,
          'route53:GetChange',
          `change ${changeId}`,
          subject(r, normalizeHostedZoneId(r.hostedZoneId)),
        ),
    );
    status = res.ChangeInfo?.Status;
  }
  return `, INSYNC after ${((opts.now() - started) / 1000).toFixed(1)} s`;
}

async function deactivate(route53: Route53Client, req: ResourceRequest): Promise<ActionOutcome> {
  const r = dnsOf(req.resource);
  if (!r.deleteOnDeactivate)
    return { changed: false, detail: `${r.recordName} A: kept (deleteOnDeactivate is false)` };
  const zone = normalizeHostedZoneId(r.hostedZoneId);
  const value = valueFor(r, req.node);
  // Twice at most: the record may change or vanish between the read and the DELETE.
  for (let attempt = 1; ; attempt++) {
    const rec = await readRecord(route53, req.cache, r, req.signal);
    if (!rec) return { changed: false, detail: `${r.recordName} A: already absent` };
    // Another node's address means another owner published it: not ours to delete.
    if (!valuesOf(rec).includes(value))
      return {
        changed: false,
        detail: `${r.recordName} A holds ${show(rec)}, not ${value} of node ${req.node.name}; left alone`,
      };

    await req.beforeMutation();
    try {
      await route53.send(
        new ChangeResourceRecordSetsCommand({
          HostedZoneId: zone,
          ChangeBatch: {
            Comment: `failover ${req.cluster}/${req.group} epoch ${req.epoch}: ${req.node.name} inactive`,
            Changes: [{ Action: 'DELETE', ResourceRecordSet: rec }],
          },
        }),
        { abortSignal: req.signal },
      );
      return { changed: true, detail: `${r.recordName} A ${show(rec)}: deleted` };
    } catch (e) {
      // AWS: InvalidChangeBatch ("not found" / "values do not match"); moto: InvalidInput. Read again.
      const code = awsErrorCode(e);
      if (attempt >= 2 || (code !== 'InvalidChangeBatch' && code !== 'InvalidInput'))
        throw route53Error(e, 'route53:ChangeResourceRecordSets', `hosted zone ${zone}`, subject(r, zone));
    } finally {
      req.cache.delete(recordKey(zone, r.recordName));
    }
  }
}

async function check(route53: Route53Client, req: CheckRequest): Promise<CheckResult> {
  const r = dnsOf(req.resource);
  const zone = normalizeHostedZoneId(r.hostedZoneId);
  const value = valueFor(r, req.node);
  const rec = await checkedRecord(route53, req, r);
  if (!rec)
    return {
      status: 'drift',
      detail: `${r.recordName} A does not exist in zone ${zone}; expected ${value} (node ${req.node.name})`,
    };
  const values = valuesOf(rec);
  if (rec.AliasTarget || values.length !== 1 || values[0] !== value)
    return {
      status: 'drift',
      detail: `${r.recordName} A holds ${show(rec)} instead of ${value} (node ${req.node.name})`,
    };
  const ttl =
    rec.TTL === r.ttl
      ? ''
      : ` (TTL ${rec.TTL ?? '-'}; the definition says ${r.ttl}: the next activation sets it)`;
  return { status: 'ok', detail: `${r.recordName} A ${value}${ttl}` };
}

function subject(r: DnsResource, zone: string) {
  return { resource: r.name, hostedZoneId: zone, recordName: r.recordName };
}
