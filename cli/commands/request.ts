/**
 * `failoverctl move GROUP --to NODE`, `start GROUP`, `stop GROUP`, `suspend [GROUP]`, `resume [GROUP]`:
 * record a request (processed once by reconcile) and wait for its outcome, showing progress.
 *
 * The web console (cli/console) submits its actions through the same three steps:
 * checkRequest() (the request makes sense for this definition), submitRequests() (recorded in the
 * table) and awaitOutcomes() (what reconcile answered).
 */

import { reconcileCluster } from '../../controller/reconcile/reconcile';
import type { DynamoStore, StoredRequest } from '../../controller/state/dynamo-store';
import { FailoverError, InvalidRequestError } from '../../shared/base/errors';
import { REQUEST_MAX_AGE_MS } from '../../shared/config/defaults';
import type { ClusterConfig } from '../../shared/config/load';
import type { RequestKind } from '../../shared/core/model';
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';
import { cliController, cliHolder } from '../controller';
import { EXIT } from '../errors';

export interface RequestOptions {
  cluster?: string;
  to?: string;
  /** Seconds to wait for reconcile to process the request (0: do not wait). */
  wait: number;
  /** Run reconcile here right away instead of waiting for the deployed controller. */
  local?: boolean;
}

export const REQUEST_KINDS: readonly RequestKind[] = ['move', 'start', 'stop', 'suspend', 'resume'];

/**
 * The groups a request is about, after checking it against the definition: the group exists, a
 * move names a target, the target is one of the group's nodes. Throws InvalidRequestError saying
 * what to write instead.
 */
export function checkRequest(
  config: ClusterConfig,
  kind: RequestKind,
  group: string | undefined,
  to: string | undefined,
): string[] {
  if (!REQUEST_KINDS.includes(kind))
    throw new InvalidRequestError(`unknown request "${kind}"; use one of: ${REQUEST_KINDS.join(', ')}`);
  const groups = group
    ? [group]
    : kind === 'suspend' || kind === 'resume'
      ? config.groups.map((g) => g.name)
      : [];
  if (groups.length === 0)
    throw new InvalidRequestError(
      `${kind} needs a group: failoverctl ${kind} GROUP (groups: ${config.groups.map((g) => g.name).join(', ')})`,
    );
  for (const g of groups) {
    const def = config.groups.find((x) => x.name === g);
    if (!def)
      throw new InvalidRequestError(
        `group ${g} is not in cluster ${config.cluster}; groups: ${config.groups.map((x) => x.name).join(', ')}`,
      );
    if (kind === 'move' && !to)
      throw new InvalidRequestError(
        `move needs a target: failoverctl move ${g} --to NODE (nodes of ${g}: ${def.nodes.join(', ')})`,
      );
    if (to && !def.nodes.includes(to))
      throw new InvalidRequestError(
        `node ${to} is not a node of group ${g}; use one of: ${def.nodes.join(', ')}`,
      );
  }
  return groups;
}

/** Records one request per group (checked by checkRequest first); reconcile processes each once. */
export async function submitRequests(
  store: DynamoStore,
  config: ClusterConfig,
  request: { kind: RequestKind; group?: string; to?: string; by: string },
  now: number,
): Promise<StoredRequest[]> {
  const groups = checkRequest(config, request.kind, request.group, request.to);
  const submitted: StoredRequest[] = [];
  for (const g of groups) {
    submitted.push(
      await store.putRequest(
        config.cluster,
        { kind: request.kind, group: g, ...(request.to ? { to: request.to } : {}), by: request.by },
        now,
      ),
    );
  }
  return submitted;
}

/**
 * Waits until reconcile has processed every request (done, rejected or cancelled) or `waitMs`
 * has passed; returns the requests as last read, those still pending included.
 */
export async function awaitOutcomes(
  store: DynamoStore,
  cluster: string,
  submitted: readonly StoredRequest[],
  options: {
    waitMs: number;
    now: () => number;
    onOutcome?: (r: StoredRequest) => void;
    onWaiting?: (leftMs: number) => void;
  },
): Promise<StoredRequest[]> {
  const deadline = options.now() + options.waitMs;
  const last = new Map(submitted.map((r) => [r.id, r]));
  const pending = new Set(submitted.map((r) => r.id));
  let polls = 0;
  while (pending.size > 0 && options.now() < deadline) {
    for (const id of [...pending]) {
      const r = await store.getRequest(cluster, id);
      if (r) last.set(id, r);
      if (r && r.status !== 'pending') {
        pending.delete(id);
        options.onOutcome?.(r);
      }
    }
    if (pending.size > 0) {
      if (++polls % 4 === 0) options.onWaiting?.(deadline - options.now());
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  return submitted.map((r) => last.get(r.id)!);
}

/**
 * The error a request still pending after the wait becomes: what is pending, why it may be, when
 * it expires by itself, and how to withdraw it now.
 */
export function pendingError(
  pending: readonly Pick<StoredRequest, 'id' | 'kind' | 'group' | 'to' | 'createdAt'>[],
  waitSeconds: number,
): FailoverError {
  const what = pending.map((r) => `${r.id} (${r.kind} ${r.group}${r.to ? ` to ${r.to}` : ''})`).join(', ');
  const expires = new Date(Math.min(...pending.map((r) => r.createdAt)) + REQUEST_MAX_AGE_MS).toISOString();
  const cancel = pending.map((r) => `"failoverctl cancel ${r.id}"`).join(', ');
  return new FailoverError(
    'REQUEST_PENDING',
    `request ${what} is still pending after ${waitSeconds} s: is the controller deployed in this account and region? For a local run add --local or run "failoverctl reconcile --once". Unless reconcile processes it first, it expires at ${expires} (${REQUEST_MAX_AGE_MS / 60_000} minutes after it was recorded) and nothing is done; to withdraw it now: ${cancel}`,
  );
}

export async function requestCommand(
  io: Io,
  flags: GlobalFlags,
  kind: RequestKind,
  group: string | undefined,
  options: RequestOptions,
): Promise<number> {
  if (options.wait * 1000 > REQUEST_MAX_AGE_MS)
    throw new InvalidRequestError(
      `--wait ${options.wait} is longer than a request lives: reconcile rejects a request not processed within ${REQUEST_MAX_AGE_MS / 1000} s; use --wait ${REQUEST_MAX_AGE_MS / 1000} or less`,
    );
  const store = openStore(io, flags);
  const stored = await loadCluster(store, options.cluster);
  const { config } = stored;
  const submitted = await submitRequests(
    store,
    config,
    {
      kind,
      ...(group ? { group } : {}),
      ...(options.to ? { to: options.to } : {}),
      by: io.env.USER ?? 'failoverctl',
    },
    io.now(),
  );
  io.err(
    `${kind} request${submitted.length > 1 ? 's' : ''} ${submitted.map((r) => r.id).join(', ')} recorded for ${submitted.map((r) => r.group).join(', ')}`,
  );
  if (options.local) {
    const deps = cliController(io, flags, config.region);
    await reconcileCluster({ ...deps, holder: cliHolder() }, config.cluster, {
      deadline: io.now() + Math.max(10, options.wait) * 1000,
    });
  }
  if (options.wait <= 0) return EXIT.ok;

  let code: number = EXIT.ok;
  const outcomes = await awaitOutcomes(store, config.cluster, submitted, {
    waitMs: options.wait * 1000,
    now: io.now,
    onOutcome: (r) => {
      io.out(`${r.group}: ${r.status}: ${r.message ?? ''}`);
      if (r.status === 'rejected' || r.status === 'cancelled') code = EXIT.rejected;
    },
    onWaiting: (left) => io.err(`  waiting for reconcile (${Math.ceil(left / 1000)} s left)...`),
  });
  const pending = outcomes.filter((r) => r.status === 'pending');
  if (pending.length > 0) throw pendingError(pending, options.wait);
  if (code === EXIT.ok && kind !== 'suspend' && kind !== 'resume')
    io.err('follow the transition with "failoverctl status" or "failoverctl events --follow"');
  return code;
}
