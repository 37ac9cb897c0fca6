#!/usr/bin/env node
// The sandbox nodes' softdog, in a process of its own (run at a raised priority where allowed), so
// that a busy sandbox or a loaded machine does not make a reset late: the node's agent writes one
// byte per feed to a plain file (its --watchdog-device); `timeoutMs` after the last write (the
// file's mtime, the kernel's own time of the write) the node resets, as softdog resets a machine:
// the node is marked down (a `down` file, so that SSM delivers nothing more to it), every process
// carrying the node's SANDBOX_NODE_DIR in its environment is SIGKILLed at once, its interface
// addresses are gone. Armed by the first byte, disarmed by the magic 'V'; a re-open (the agent
// restarted, the file truncated) neither feeds nor disarms it; a node marked down (crashed or reset,
// until it boots) has none running. Each reset is one JSON line on stdout.
//
//   node watchdog-emulator.mjs '{"timeoutMs":1000,"pollMs":5,"nodes":[{"name":"node1","dir":"/tmp/..."}]}'
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const { timeoutMs, pollMs, nodes } = JSON.parse(process.argv[2] ?? '{}');
const state = new Map(nodes.map((n) => [n.name, { armed: false, fedAt: 0, size: 0, mtime: 0 }]));

function killEverything(dir) {
  const marker = `SANDBOX_NODE_DIR=${dir}\0`;
  const killed = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      if (`${readFileSync(`/proc/${pid}/environ`, 'latin1')}\0`.includes(marker)) {
        process.kill(pid, 'SIGKILL');
        killed.push(pid);
      }
    } catch {
      // gone meanwhile, or not ours
    }
  }
  return killed;
}

function check(node) {
  const s = state.get(node.name);
  const file = join(node.dir, 'watchdog');
  // A node that is down (reset, crashed, halted) has no watchdog running until it boots again.
  if (existsSync(join(node.dir, 'down'))) {
    Object.assign(s, { armed: false, size: 0, mtime: 0 });
    return;
  }
  let st;
  try {
    st = statSync(file);
  } catch {
    return;
  }
  if (st.size > 0 && (st.size !== s.size || st.mtimeMs !== s.mtime)) {
    s.size = st.size;
    s.mtime = st.mtimeMs;
    s.armed = readFileSync(file, 'latin1').slice(-1) !== 'V';
    s.fedAt = st.mtimeMs;
  }
  const now = Date.now();
  const overdue = now - (s.fedAt + timeoutMs);
  if (!s.armed || overdue <= 0) return;
  writeFileSync(join(node.dir, 'down'), String(now));
  // Twice: a process forked while the first sweep ran is caught by the second.
  const killed = [...killEverything(node.dir), ...killEverything(node.dir)];
  writeFileSync(join(node.dir, 'addrs'), '');
  writeFileSync(file, '');
  Object.assign(s, { armed: false, size: 0, mtime: 0 });
  process.stdout.write(
    `${JSON.stringify({ node: node.name, at: now, notFedMs: Math.round(now - s.fedAt), overdueMs: overdue, killed: killed.length })}\n`,
  );
}

setInterval(() => {
  for (const n of nodes) check(n);
}, pollMs);
// The sandbox ends: so do we.
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
