#!/usr/bin/env node
// The sandbox's "application": an HTTP server on a loopback port that answers which node it runs
// on. Started and stopped by the exec resource's scripts through the agent's guard.
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

const dir = process.env.SANDBOX_NODE_DIR;
const node = process.env.SANDBOX_NODE ?? 'unknown';
if (!dir) {
  console.error('SANDBOX_NODE_DIR is not set');
  process.exit(2);
}
const server = createServer((_req, res) => res.end(`${node}\n`));
server.listen(0, '127.0.0.1', () => {
  writeFileSync(join(dir, 'app.port'), String(server.address().port));
});
// Stop at once: the agent's self-fence must finish within fenceMarginMs (see README, "Failover
// time"), and server.close() would wait for idle keep-alive connections.
process.on('SIGTERM', () => process.exit(0));
