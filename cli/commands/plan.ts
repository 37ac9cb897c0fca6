/** `failoverctl plan`: what reconcile would do now, doing nothing. */

import { planCluster } from '../../controller/reconcile/plan-only';
import { describeAction } from '../../controller/reconcile/reconcile';
import { loadCluster } from '../cluster';
import { type GlobalFlags, type Io, openStore } from '../context';
import { cliController } from '../controller';

export async function planCommand(
  io: Io,
  flags: GlobalFlags,
  options: { cluster?: string; json?: boolean },
): Promise<number> {
  const stored = await loadCluster(openStore(io, flags), options.cluster);
  const plans = await planCluster(cliController(io, flags, stored.config.region), stored.config.cluster);
  if (options.json) {
    io.out(JSON.stringify(plans, null, 2));
    return 0;
  }
  for (const p of plans) {
    io.out(
      `group ${p.group} (epoch ${p.epoch}): ${p.actions.length === 0 ? 'nothing to do' : `${p.actions.length} actions`}${p.requeueAfterMs !== undefined ? `, waiting ${p.requeueAfterMs} ms` : ''}`,
    );
    for (const a of p.actions)
      io.out(`  - ${describeAction(a)}${'why' in a ? `: ${a.why}` : 'message' in a ? `: ${a.message}` : ''}`);
    for (const r of p.reasons) io.out(`    · ${r}`);
  }
  return 0;
}
