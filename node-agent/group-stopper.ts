/**
 * Stopping a group locally, by the agent itself: on a self-fence, when a stale owner demotes itself,
 * at shutdown, at start (what cannot be verified), and for an interrupted guard run.
 *
 * Under the group's lock file (shared with the guard), so a stop never overlaps a start:
 *
 *   lock ─▶ record "stopping" ─▶ resources in reverse order: exec stop scripts, VIPs off
 *        ─▶ anything left by a killed guard run ─▶ record "stopped" (or "failed") ─▶ unlock
 *
 * Urgent stops (the fence) do not wait for a guard that holds the lock: they SIGKILL the guard and
 * its command's process group, take the lock, and run the stop scripts; whatever the interrupted
 * command had started is then stopped by them, and processes still carrying that guard run's marker
 * are killed at the end. Other stops wait for the lock (a start or stop in progress finishes first)
 * and re-check the local record, so they never stop a copy that a guard has just (re)started at a
 * newer epoch.
 */
import { interfaceAddress, stopBudgetMs, stopCommand } from '../shared/config/kinds';
import type { GroupConfig } from '../shared/config/schema';
import type { AgentGroupState } from '../shared/core/model';
import { sleep } from './clock';
import { acquireLock, type LockHandle, type LockOwner, LockTimeoutError, readLockOwner } from './file-lock';
import { killRunCommand, type LocalGroupRecord, type LocalState } from './local-state';
import type { Logger } from './log';
import { errorText } from './log';
import { describeExit, killMarkedUntilGone, killPid, runCommand, sameProcessAlive } from './process-util';
import type { VipOps } from './vip';

export type StopReason = 'fence' | 'demote' | 'shutdown' | 'startup' | 'orphan' | 'removed';

export interface StopOptions {
  urgent: boolean;
  /**
   * Only stop if the local record is still this one (epoch and state) once the lock is held; not
   * checked once a fence has made the stop urgent.
   */
  expect?: { epoch: number; state: AgentGroupState };
  /** How long a non-urgent stop waits for the lock. */
  lockWaitMs?: number;
}

export interface StopperDeps {
  state: LocalState;
  log: Logger;
  vip: VipOps;
  /** The group's definition (current cluster definition, else the last one known). */
  definition(group: string): GroupConfig | undefined;
  /** A local record changed: the heartbeat reports it at once. */
  onLocalChange(): void;
  env: Record<string, string | undefined>;
  /**
   * The agent's own start of the group (no application: addresses only) under way in this process,
   * if any. A fence takes its lock without killing it (it is the agent itself); its `ip addr add`
   * may still land, so the stop waits for it to end (it finds its lock gone and takes off what it
   * added) before it takes the addresses off and records "stopped".
   */
  startInProcess?(group: string): Promise<unknown> | undefined;
  /** Wall clock for the stop-script timestamps in the log (a parameter for tests). */
  now?: () => number;
}

interface InFlight {
  promise: Promise<boolean>;
  urgent: boolean;
}

const DEFAULT_LOCK_WAIT_MS = 60_000;
/**
 * How long a stop waits for the agent's own start under way (its record read is bounded by the
 * daemon's lease-bounded timeouts, its `ip` calls by their 5 s timeout).
 */
const OWN_START_WAIT_MS = 8000;

/** Stops groups locally, one stop per group at a time (see the header). */
export class GroupStopper {
  private readonly inflight = new Map<string, InFlight>();

  constructor(private readonly deps: StopperDeps) {}

  isStopping(group: string): boolean {
    return this.inflight.has(group);
  }

  /**
   * Stops `group` here. Resolves true when it is stopped (or was not running), false when a stop
   * script failed (recorded as `failed`), the lock could not be had, or the record changed; never
   * rejects.
   */
  stop(group: string, reason: StopReason, options: StopOptions): Promise<boolean> {
    const existing = this.inflight.get(group);
    if (existing) {
      // A fence upgrades a stop that is still waiting for the lock.
      if (options.urgent) existing.urgent = true;
      return existing.promise;
    }
    const entry: InFlight = { urgent: options.urgent, promise: Promise.resolve(false) };
    entry.promise = this.run(group, reason, options, entry)
      .catch((e: unknown) => {
        // Never an unhandled rejection (the agent would exit with the group running): a stop that
        // could not be made is reported and tried again by whoever asked for it.
        this.deps.log.error(`stop of ${group} (${reason}) failed: ${errorText(e)}; will try again`);
        return false;
      })
      .finally(() => {
        if (this.inflight.get(group) === entry) this.inflight.delete(group);
      });
    this.inflight.set(group, entry);
    return entry.promise;
  }

  private async run(
    group: string,
    reason: StopReason,
    options: StopOptions,
    entry: InFlight,
  ): Promise<boolean> {
    const { state, log } = this.deps;
    let killedNonce: string | undefined;
    let lock: LockHandle | undefined;
    try {
      lock = await acquireLock(state.lockFile(group), `agent stop (${reason})`, {
        timeoutMs: entry.urgent ? 0 : (options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS),
        steal: (owner) => {
          if (!entry.urgent) return false;
          killedNonce = this.killHolder(group, owner) ?? killedNonce;
          return true;
        },
      });
    } catch (e) {
      if (e instanceof LockTimeoutError && !entry.urgent) {
        log.warn(`cannot stop ${group} (${reason}) yet: ${e.message}; will try again`);
        return false;
      }
      // The lock cannot be had at all (a full disk, a broken state directory, a lock that cannot be
      // moved). A fence must not depend on the lock: it kills the holder it can find and stops the
      // group without it.
      if (!entry.urgent) throw e;
      log.error(`fence: cannot take the lock of ${group} (${errorText(e)}); stopping it without`);
      killedNonce = this.killHolder(group, readLockOwner(state.lockFile(group)));
    }
    try {
      const rec = this.readRecord(group, entry.urgent);
      // A guard run whose guard is gone (killed by us, by SSM at its timeout, or crashed) may have
      // left its command running: it must not go on starting things after the stop scripts.
      const run = rec?.run;
      if (run && run.guardPid !== process.pid && !sameProcessAlive(run.guardPid, run.guardStart)) {
        if (killRunCommand(run)) {
          log.warn(
            `killed the ${run.action} command of ${group} left by a dead guard (process group ${run.cmdPid})`,
          );
        }
        killedNonce ??= run.nonce;
      }
      if (!rec || rec.state === 'stopped') return true;
      // A fence stops whatever runs, at any epoch: only a stop that stayed non-urgent spares a
      // copy started since it was asked for.
      if (
        options.expect &&
        !entry.urgent &&
        (rec.epoch !== options.expect.epoch || rec.state !== options.expect.state)
      ) {
        log.info(
          `not stopping ${group} (${reason}): it changed to ${rec.state} at epoch ${rec.epoch} meanwhile`,
        );
        return false;
      }
      // The markers of interrupted runs, newest first; kept in every record until they are known
      // gone, so that a stop after this one (this agent may die during the stop scripts) kills them.
      const markers = [...new Set([...(killedNonce ? [killedNonce] : []), ...(rec.left ?? [])])];
      const kept = markers.length > 0 ? { left: markers } : {};
      const base = { group, epoch: rec.epoch, pid: process.pid, ...(rec.vips ? { vips: rec.vips } : {}) };
      const problems: string[] = [];
      // A record that cannot be written does not stop the stop: the old one ("running") stays,
      // which the heartbeat reports as running, the safe side.
      const write = (record: LocalGroupRecord) => {
        try {
          state.writeGroup(record);
        } catch (e) {
          problems.push(`local record of ${group}: ${errorText(e)}`);
        }
      };
      write({ ...base, ...kept, state: 'stopping', at: this.now(), detail: `agent stop (${reason})` });
      this.deps.onLocalChange();
      log.warn(`stopping ${group} at epoch ${rec.epoch} (${reason})`);
      problems.push(...(await this.stopResources(group, rec.epoch, reason, rec.vips ?? [])));
      // The agent's own start of the group under way in this process (addresses only; it cannot be
      // killed): its `ip addr add` may still land. Waited for, within a bound, once the addresses
      // are off; then they are taken off again. Not ended in time: "failed", and stopped again later.
      const own = this.deps.startInProcess?.(group);
      if (own) {
        log.warn(`waiting for the agent's own start of ${group} to end`);
        const ended = await Promise.race([
          own.then(
            () => true,
            () => true,
          ),
          sleep(OWN_START_WAIT_MS).then(() => false),
        ]);
        if (!ended)
          problems.push(`the agent's own start of ${group} has not ended after ${OWN_START_WAIT_MS} ms`);
        problems.push(...(await this.stopResources(group, rec.epoch, reason, rec.vips ?? [])));
      }
      // What interrupted runs left dies after the stop scripts (they stop the application cleanly
      // first). That includes an `ip addr add` of a guard still under way, which could have landed
      // after the addresses were taken off: they are taken off once more.
      const survivors = await this.killLeftovers(group, markers);
      if (survivors.length > 0)
        problems.push(`processes of an interrupted run outlived SIGKILL: ${survivors.join(', ')}`);
      if (markers.length > 0) for (const ip of rec.vips ?? []) await this.vipOff(ip, problems);
      let ok = problems.length === 0;
      write({
        ...base,
        // Until they are known gone, the next stop looks for them again.
        ...(ok ? {} : kept),
        state: ok ? 'stopped' : 'failed',
        at: this.now(),
        detail: ok ? `stopped by the agent (${reason})` : problems.join('; '),
      });
      // A "stopped" that could not be written is not a stop: the record still says otherwise.
      ok = problems.length === 0;
      this.deps.onLocalChange();
      if (ok) log.warn(`stopped ${group} at epoch ${rec.epoch} (${reason})`);
      else log.error(`stop of ${group} failed (${reason}): ${problems.join('; ')}`);
      return ok;
    } finally {
      lock?.release();
    }
  }

  /** Kills what carries the markers of interrupted runs (killMarkedUntilGone); the survivors. */
  private async killLeftovers(group: string, markers: string[]): Promise<number[]> {
    const out = await killMarkedUntilGone(markers);
    if (out.killed.length > 0)
      this.deps.log.warn(`killed what an interrupted guard run left of ${group}`, { pids: out.killed });
    return out.survivors;
  }

  /**
   * The group's local record. One that cannot be read stops no fence: the group is taken as
   * running at an unknown epoch (0), its stop scripts run from the definition and its record is
   * written anew. Other stops report the error and are tried again.
   */
  private readRecord(group: string, urgent: boolean): LocalGroupRecord | undefined {
    try {
      return this.deps.state.readGroup(group);
    } catch (e) {
      if (!urgent) throw e;
      this.deps.log.error(
        `fence: the local record of ${group} cannot be read (${errorText(e)}); stopping it anyway`,
      );
      return { group, state: 'failed', epoch: 0, pid: process.pid, at: this.now(), detail: errorText(e) };
    }
  }

  /** Exec stop scripts and VIPs off, in reverse resource order; the problems met. */
  private async stopResources(
    group: string,
    epoch: number,
    reason: StopReason,
    extraVips: string[],
  ): Promise<string[]> {
    const { log } = this.deps;
    const def = this.deps.definition(group);
    const problems: string[] = [];
    if (!def) {
      problems.push(
        `group ${group} is in neither the cluster definition nor the cached one; stop its application by hand`,
      );
    }
    const vipsDone = new Set<string>();
    for (const res of [...(def?.resources ?? [])].reverse()) {
      const command = stopCommand(res);
      const address = interfaceAddress(res);
      if (command !== undefined) {
        const timeoutMs = stopBudgetMs(res);
        const started = this.now();
        const result = await runCommand({
          argv: [command],
          output: 'capture',
          timeoutMs,
          env: {
            ...this.deps.env,
            FAILOVER_GROUP: group,
            FAILOVER_EPOCH: String(epoch),
            FAILOVER_RESOURCE: res.name,
            FAILOVER_STOP_REASON: reason,
          },
        });
        const fields = {
          group,
          resource: res.name,
          ms: this.now() - started,
          output: result.output.trim() || undefined,
        };
        if (result.code === 0 && !result.timedOut) log.info(`stop script of ${res.name} done`, fields);
        else {
          problems.push(`stop script of ${res.name} (${command}): ${describeExit(result, timeoutMs)}`);
          log.error(`stop script of ${res.name} failed: ${describeExit(result, timeoutMs)}`, fields);
        }
      } else if (address !== undefined) {
        vipsDone.add(address);
        await this.vipOff(address, problems);
      }
    }
    for (const ip of extraVips) if (!vipsDone.has(ip)) await this.vipOff(ip, problems);
    return problems;
  }

  private async vipOff(ip: string, problems: string[]): Promise<void> {
    try {
      await this.deps.vip.remove(ip);
    } catch (e) {
      problems.push(`address ${ip}: ${errorText(e)}`);
    }
  }

  /**
   * Kills the guard holding the group's lock and its command's process group. Returns the nonce
   * of the interrupted run, so that its leftovers can be found after the stop scripts.
   */
  private killHolder(group: string, owner: LockOwner | undefined): string | undefined {
    const { log, state } = this.deps;
    let run: LocalGroupRecord['run'];
    try {
      run = state.readGroup(group)?.run;
    } catch {
      run = undefined; // unreadable: the holder in the lock file is all there is to kill
    }
    if (owner && owner.pid !== process.pid && sameProcessAlive(owner.pid, owner.start)) {
      killPid(owner.pid, 'SIGKILL');
      log.warn(`fence: killed ${owner.what} (pid ${owner.pid}) holding the lock of ${group}`);
    }
    if (run) {
      if (run.guardPid !== owner?.pid && sameProcessAlive(run.guardPid, run.guardStart))
        killPid(run.guardPid, 'SIGKILL');
      if (killRunCommand(run)) {
        log.warn(`fence: killed the ${run.action} command of ${group} (process group ${run.cmdPid})`);
      }
      return run.nonce;
    }
    return undefined;
  }

  private now(): number {
    return (this.deps.now ?? Date.now)();
  }
}
