/**
 * `failoverctl cancel REQUEST_ID`: withdraw a request that reconcile has not processed yet (for
 * example while no controller runs). A request already processed stays as it was: its outcome is
 * printed and the exit code is 4 (conflict).
 */
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';
import { EXIT } from '../errors';

export async function cancelCommand(
  io: Io,
  flags: GlobalFlags,
  id: string,
  options: { cluster?: string },
): Promise<number> {
  const store = openStore(io, flags);
  const { config } = await loadCluster(store, options.cluster);
  const request = await store.cancelRequest(config.cluster, id, io.env.USER ?? 'failoverctl', io.now());
  io.out(`${request.group}: ${request.kind} request ${request.id} cancelled`);
  return EXIT.ok;
}
