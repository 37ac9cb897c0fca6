/**
 * Disk (e.g. EFS or EBS) health: write N bytes with fsync, read them back and compare. A hung
 * NFS mount can block a libuv thread for minutes; the runner then reports a timeout and starts no
 * second probe of the same monitor until this one returns, so at most one thread per disk monitor
 * can be stuck.
 */
import { randomBytes } from 'node:crypto';
import { open, readFile } from 'node:fs/promises';
import { fail, ok, type Probe } from './probe';

/** Writes `sizeBytes` random bytes to `file` with fsync, reads them back, compares. */
export function diskProbe(file: string, sizeBytes: number): Probe {
  return async () => {
    const data = randomBytes(sizeBytes);
    try {
      const handle = await open(file, 'w', 0o600);
      try {
        await handle.write(data, 0, data.length, 0);
        await handle.sync();
      } finally {
        await handle.close();
      }
      const back = await readFile(file);
      if (!back.equals(data)) {
        return fail(`${file}: read back ${back.length} bytes that differ from the ${sizeBytes} written`);
      }
      return ok(`${file}: wrote, synced and read back ${sizeBytes} bytes`);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      return fail(`${file}: ${err.code ?? ''} ${err.message}`.trim());
    }
  };
}
