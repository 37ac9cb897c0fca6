#!/usr/bin/env node
// The application of `npm run chaos`: a writer that appends one line every WRITE_EVERY_MS to a file
// every node shares (CHAOS_LEDGER, the stand-in for an EFS volume): node, epoch (from the guard
// that started it), sequence, CLOCK_MONOTONIC in ns, pid. All nodes of the sandbox run on one
// machine, so CLOCK_MONOTONIC (process.hrtime) is one clock for every writer and for the checker;
// a jump of a node's wall clock (libfaketime) does not touch it. Each line is one write() to a file
// opened O_APPEND: lines of different writers never interleave.
import { openSync, writeSync } from 'node:fs';

const WRITE_EVERY_MS = 15;
const ledger = process.env.CHAOS_LEDGER;
const node = process.env.SANDBOX_NODE ?? 'unknown';
const epoch = process.env.FAILOVER_EPOCH ?? '?';
if (!ledger) {
  console.error('CHAOS_LEDGER is not set');
  process.exit(2);
}
const fd = openSync(ledger, 'a');
let seq = 0;
const write = () => writeSync(fd, `${node} ${epoch} ${seq++} ${process.hrtime.bigint()} ${process.pid}\n`);
write();
setInterval(write, WRITE_EVERY_MS);
// A stop is immediate: what the stop script waits for is the process gone.
process.on('SIGTERM', () => process.exit(0));
