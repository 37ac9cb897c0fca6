/**
 * An exclusive lock between processes: a file holding the owner's pid, process start time and a
 * random nonce. It comes into existence with its owner already in it: the owner is written to a
 * file of its own, which is then hard-linked to the lock's name (link never overwrites: EEXIST
 * when the lock is taken) — never an empty lock file that a fence or a stale check could take for
 * an ownerless one while its creator lives. A lock whose owner is gone (crashed guard, killed
 * agent) is broken: renamed away atomically, and the renamed file is checked to be the stale one
 * we saw (not a fresh lock someone took in between) before it is deleted.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { sleep } from './clock';
import { AgentError, EXIT } from './errors';
import { processStartTime, sameProcessAlive } from './process-util';

export interface LockOwner {
  pid: number;
  start?: string;
  nonce: string;
  /** What the owner is doing, for messages: "guard start epoch 3", "agent fence". */
  what: string;
  at: number;
}

/** The lock stayed busy for the whole wait; names the holder. */
export class LockTimeoutError extends Error {
  constructor(
    readonly file: string,
    readonly owner: LockOwner | undefined,
    waitedMs: number,
  ) {
    super(
      `lock ${file} is held by ${owner ? `pid ${owner.pid} (${owner.what})` : 'another process'}; waited ${waitedMs} ms`,
    );
  }
}

/**
 * An empty or unreadable lock file older than this is left over by an earlier agent (it created the
 * file, then wrote the owner, and could crash between the two), or is not a lock at all.
 */
const HALF_WRITTEN_STALE_MS = 2000;

/** The owner recorded in a lock file, or undefined when unreadable. */
export function readLockOwner(file: string): LockOwner | undefined {
  const read = readLock(file);
  return 'owner' in read ? read.owner : undefined;
}

/**
 * What a lock file holds: its owner; `gone`; `garbage` (empty or not an owner: only an earlier
 * agent's crash between create and write leaves that); or `unknown` (the read itself failed, e.g.
 * EMFILE or EIO: the file may well name a live owner, so it must be treated as busy).
 */
function readLock(
  file: string,
): { owner: LockOwner } | { gone: true } | { garbage: true } | { unknown: string } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? { gone: true } : { unknown: code ?? String(e) };
  }
  try {
    const owner = JSON.parse(text) as LockOwner;
    if (typeof owner.pid === 'number' && typeof owner.nonce === 'string') return { owner };
  } catch {
    // not JSON
  }
  return { garbage: true };
}

/** A held lock; `release()` deletes the file only while it is still ours. */
export class LockHandle {
  private released = false;
  constructor(
    readonly file: string,
    readonly owner: LockOwner,
  ) {}

  /** Deletes the lock file if it is still ours (a forced break by the agent may have taken it). */
  release(): void {
    if (this.released) return;
    this.released = true;
    // A read that fails is tried again: a lock left behind by a holder that lives on (the agent's
    // own start) would keep every later start and stop out.
    let read = readLock(this.file);
    for (let i = 0; i < 3 && 'unknown' in read; i++) read = readLock(this.file);
    if (!('owner' in read) || read.owner.nonce !== this.owner.nonce) return;
    try {
      unlinkSync(this.file);
    } catch {
      // already gone
    }
  }

  /**
   * Still ours: nobody broke it. Lost only on evidence (the file gone, another owner's, or no owner
   * at all): a read that fails (EMFILE, EIO) proves nothing, and a healthy start must not be killed
   * for it.
   */
  held(): boolean {
    if (this.released) return false;
    const read = readLock(this.file);
    return 'unknown' in read || ('owner' in read && read.owner.nonce === this.owner.nonce);
  }
}

/** Stale locks broken in a row by one attempt before it reports the lock busy. */
const MAX_BREAKS_PER_ATTEMPT = 5;

/** One attempt: the handle, or the current owner when busy. */
export function tryLock(
  file: string,
  what: string,
  breaks = 0,
): LockHandle | { busy: LockOwner | undefined } {
  const owner: LockOwner = {
    pid: process.pid,
    nonce: randomBytes(8).toString('hex'),
    what,
    at: Date.now(),
  };
  const start = processStartTime(process.pid);
  if (start !== undefined) owner.start = start;
  // Written in full under a name of our own, then linked into place.
  const mine = `${file}.${process.pid}.${owner.nonce}`;
  const fd = openSync(mine, 'wx', 0o600);
  try {
    try {
      writeSync(fd, JSON.stringify(owner));
    } finally {
      closeSync(fd);
    }
    linkSync(mine, file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
      throw new AgentError(
        EXIT.failed,
        `cannot take lock ${file}: its filesystem refuses hard links (${code}); the agent's state directory must be on a filesystem with hard links (ext4, xfs, NTFS), not vfat or a network share: set --state-dir`,
      );
    }
    if (code !== 'EEXIST') throw e;
    const current = readLockOwner(file);
    if (breaks < MAX_BREAKS_PER_ATTEMPT && isStale(file, current) && breakStale(file, current)) {
      return tryLock(file, what, breaks + 1);
    }
    return { busy: current };
  } finally {
    try {
      unlinkSync(mine);
    } catch {
      // best effort: a leftover only takes a name no lock uses
    }
  }
  return new LockHandle(file, owner);
}

function isStale(file: string, owner: LockOwner | undefined): boolean {
  if (owner) return !sameProcessAlive(owner.pid, owner.start);
  const read = readLock(file);
  if ('gone' in read) return true; // vanished: try again
  if ('owner' in read) return !sameProcessAlive(read.owner.pid, read.owner.start);
  if ('unknown' in read) return false; // cannot tell: busy
  try {
    return Date.now() - statSync(file).mtimeMs > HALF_WRITTEN_STALE_MS;
  } catch {
    return true; // vanished: try again
  }
}

/**
 * Removes a lock whose owner is gone; true when it is gone (try again), false when it stays (put
 * back, or it could not be moved). The rename is atomic; if what we renamed turns out to be a
 * different (fresh) lock, it is linked back (link never overwrites) and the caller sees it busy.
 * A stale check deletes only what it positively identifies as the lock it judged (an unreadable
 * file goes back); a `forced` break (the fence, which has killed the holder it saw) deletes
 * anything but another, readable owner.
 */
export function breakStale(file: string, seen: LockOwner | undefined, forced = false): boolean {
  const aside = `${file}.stale.${process.pid}.${randomBytes(4).toString('hex')}`;
  try {
    renameSync(file, aside);
  } catch (e) {
    // Gone: someone else broke it first (try again). Anything else: it cannot be broken from here.
    return (e as NodeJS.ErrnoException).code === 'ENOENT';
  }
  const moved = readLock(aside);
  const another = 'owner' in moved && moved.owner.nonce !== seen?.nonce;
  const theOneSeen = seen ? 'owner' in moved && !another : 'garbage' in moved;
  const putBack = another || (!forced && !theOneSeen && !('gone' in moved));
  if (putBack) {
    try {
      linkSync(aside, file);
    } catch {
      // A third process holds the lock now; the one we moved belongs to a process that will find
      // its lock gone at release, which it tolerates.
    }
  }
  try {
    unlinkSync(aside);
  } catch {
    // best effort
  }
  return !putBack;
}

export interface AcquireOptions {
  timeoutMs: number;
  pollMs?: number;
  /**
   * Asked on every busy poll with the owner: return true to take the lock by force (the caller has
   * already made sure the owner is dead or killed it).
   */
  steal?: (owner: LockOwner | undefined) => boolean | Promise<boolean>;
}

/** Waits for the lock; throws LockTimeoutError after `timeoutMs`. */
export async function acquireLock(file: string, what: string, options: AcquireOptions): Promise<LockHandle> {
  const started = Date.now();
  for (;;) {
    const got = tryLock(file, what);
    if (got instanceof LockHandle) return got;
    // A break that cannot remove the file waits a poll like any busy lock (no tight loop).
    if (options.steal && (await options.steal(got.busy)) && breakStale(file, got.busy, true)) continue;
    const waited = Date.now() - started;
    if (waited >= options.timeoutMs) throw new LockTimeoutError(file, got.busy, waited);
    await sleep(Math.min(options.pollMs ?? 50, options.timeoutMs - waited));
  }
}
