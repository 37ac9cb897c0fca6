/**
 * `failoverctl move GROUP --to NODE`, `start GROUP`, `stop GROUP`, `suspend [GROUP]`, `resume [GROUP]`:
 * record a request (processed once by reconcile) and wait for its outcome, showing progress.
 */

import { reconcileCluster } from '../../controller/reconcile/reconcile';
import type { StoredRequest } from '../../controller/state/dynamo-store';
import { FailoverError, InvalidRequestError } from '../../shared/base/errors';
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

export async function requestCommand(
  io: Io,
  flags: GlobalFlags,
  kind: RequestKind,
  group: string | undefined,
  options: RequestOptions,
): Promise<number> {
  const store = openStore(io, flags);
  const stored = await loadCluster(store, options.cluster);
  const { config } = stored;
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
    if (kind === 'move' && !options.to)
      throw new InvalidRequestError(
        `move needs a target: failoverctl move ${g} --to NODE (nodes of ${g}: ${def.nodes.join(', ')})`,
      );
    if (options.to && !def.nodes.includes(options.to))
      throw new InvalidRequestError(
        `node ${options.to} is not a node of group ${g}; use one of: ${def.nodes.join(', ')}`,
      );
  }

  const submitted: StoredRequest[] = [];
  for (const g of groups) {
    submitted.push(
      await store.putRequest(
        config.cluster,
        { kind, group: g, ...(options.to ? { to: options.to } : {}), by: io.env.USER ?? 'failoverctl' },
        io.now(),
      ),
    );
  }
  io.err(
    `${kind} request${submitted.length > 1 ? 's' : ''} ${submitted.map((r) => r.id).join(', ')} recorded for ${groups.join(', ')}`,
  );
  if (options.local) {
    const deps = cliController(io, flags, config.region);
    await reconcileCluster({ ...deps, holder: cliHolder() }, config.cluster, {
      deadline: io.now() + Math.max(10, options.wait) * 1000,
    });
  }
  if (options.wait <= 0) return EXIT.ok;

  const deadline = io.now() + options.wait * 1000;
  const pending = new Map(submitted.map((r) => [r.id, r]));
  let code: number = EXIT.ok;
  let dots = 0;
  while (pending.size > 0 && io.now() < deadline) {
    for (const id of [...pending.keys()]) {
      const r = await store.getRequest(config.cluster, id);
      if (r && r.status !== 'pending') {
        pending.delete(id);
        io.out(`${r.group}: ${r.status}: ${r.message ?? ''}`);
        if (r.status === 'rejected') code = EXIT.rejected;
      }
    }
    if (pending.size > 0) {
      if (++dots % 4 === 0)
        io.err(`  waiting for reconcile (${Math.ceil((deadline - io.now()) / 1000)} s left)...`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }
  if (pending.size > 0) {
    throw new FailoverError(
      'REQUEST_PENDING',
      `request ${[...pending.keys()].join(', ')} is still pending after ${options.wait} s: is the controller deployed in this account and region? For a local run add --local or run "failoverctl reconcile --once"`,
    );
  }
  if (code === EXIT.ok && kind !== 'suspend' && kind !== 'resume')
    io.err('follow the transition with "failoverctl status" or "failoverctl events --follow"');
  return code;
}
