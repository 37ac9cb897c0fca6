/** `failoverctl reconcile --once`: run the Lambda's reconcile locally (debugging, local runs). */
import { type ClusterOutcome, reconcileCluster } from '../../controller/reconcile/reconcile';
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';
import { cliController, cliHolder } from '../controller';

export function renderOutcome(o: ClusterOutcome): string[] {
  return o.groups.map(
    (g) =>
      `  ${g.group}: ${g.status}${g.owner !== undefined ? `, owner ${g.owner ?? '-'}` : ''}${g.phase ? ` (${g.phase}, epoch ${g.epoch})` : ''}, ${g.actions} actions in ${g.rounds} rounds` +
      `${g.requeueAfterMs !== undefined ? `, look again in ${g.requeueAfterMs} ms` : ''}${g.error ? `\n    error [${g.error.code}]: ${g.error.message}` : ''}`,
  );
}

export async function reconcileCommand(
  io: Io,
  flags: GlobalFlags,
  options: { cluster?: string; once?: boolean; verbose?: boolean; timeout: number },
): Promise<number> {
  const stored = await loadCluster(openStore(io, flags), options.cluster);
  const deps = cliController(io, flags, stored.config.region, options.verbose);
  const started = io.now();
  const outcome = await reconcileCluster({ ...deps, holder: cliHolder() }, stored.config.cluster, {
    deadline: started + options.timeout * 1000,
  });
  io.out(
    `reconciled cluster ${outcome.cluster} (config v${outcome.configVersion}) in ${io.now() - started} ms`,
  );
  for (const line of renderOutcome(outcome)) io.out(line);
  return outcome.groups.some((g) => g.status === 'error') ? 1 : 0;
}
