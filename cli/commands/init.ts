/** `failoverctl init`: create the state table (on-demand, stream, TTL) where no deployment made it. */
import { type GlobalFlags, type Io, openStore } from '../context';

export async function initCommand(io: Io, flags: GlobalFlags): Promise<number> {
  const store = openStore(io, flags, 'us-east-1');
  io.err(`creating state table ${store.table} (if missing)...`);
  const { created } = await store.createTable();
  io.out(
    created
      ? `created state table ${store.table}`
      : `state table ${store.table} already exists; nothing to do`,
  );
  return 0;
}
