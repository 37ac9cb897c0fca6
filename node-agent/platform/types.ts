/**
 * The platform seam: every act of the agent that depends on the operating system goes through one
 * `Platform`, one implementation per OS (`linux.ts`, `windows.ts`). The rest of the agent — the
 * lease, the fence, the guard's admission rule, the monitors' logic — is the same code everywhere.
 */

/** The operating systems the agent runs on (a node's `platform` in the cluster definition). */
export type PlatformName = 'linux' | 'windows';

/** Floating addresses on a local interface. */
export interface VipOps {
  /** Interfaces that hold `ip` now (usually zero or one). */
  holders(ip: string): Promise<string[]>;
  add(ip: string, dev?: string): Promise<void>;
  remove(ip: string): Promise<void>;
}

/** Log levels, lowest first. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

/** How the agent's node-level safety backstop looks on this OS. */
export type WatchdogSupport =
  | { supported: true; device: string }
  | {
      supported: false;
      /** Why, and what protects the node instead: printed when someone asks for a watchdog. */
      reason: string;
    };

/** Names the operator sees in messages: how to start the agent, where its log is. */
export interface ServiceHints {
  start: string;
  logs: string;
}

export interface Platform {
  readonly name: PlatformName;
  /** Where the agent and its guards share their state when no --state-dir is given. */
  readonly defaultStateDir: string;
  /** argv that runs one command text through the platform's shell (sh -c / PowerShell). */
  shellArgv(command: string): [string, string[]];
  /** Whether a process with this pid runs (a zombie counts as gone). */
  pidAlive(pid: number): boolean;
  /** The process is stopped (SIGSTOP) or traced: it runs no code until continued. */
  processFrozen(pid: number): boolean;
  /** Something that tells a recycled pid from the original process, or undefined when unknown. */
  processStartTime(pid: number): string | undefined;
  /** An id of this boot: monotonic clock readings of another boot mean nothing. */
  bootId(): string | undefined;
  /** Signals a command and everything it started; false when it is already gone. */
  killTree(pid: number, signal: NodeJS.Signals): boolean;
  /**
   * Kills what a killed guard run left behind, found by the FAILOVER_GUARD_RUN marker of its
   * environment where the OS lets the agent see it; returns the pids killed.
   */
  killMarked(nonce: string): number[];
  /** The first pid of a process with this name (the pid monitor's processName). */
  findProcessByName(name: string): Promise<number | undefined>;
  /** Address operations on local interfaces (`env` may override the tool and the interface). */
  vipOps(env: Record<string, string | undefined>): VipOps;
  /** The node watchdog: available, or why not. */
  readonly watchdog: WatchdogSupport;
  /** One log line as the system log should receive it (priority prefix, no trailing newline). */
  formatLogLine(level: LogLevel, line: string, env: Record<string, string | undefined>): string;
  /** argv of one ICMP echo to `host`, waiting at most `waitMs`. */
  pingArgv(pingCommand: string, host: string, waitMs: number): string[];
  readonly hints: ServiceHints;
}
