/**
 * A tiny line logger for the system log: one line per event, `prefix level message key=value ...`.
 * No dependency, no buffering (a fence must be visible in the log even if the node resets next).
 *
 * - On Linux under systemd each line carries its journald priority (`<4>` for a warning, see
 *   platform/linux.ts), so that `journalctl -u failover-agent -p warning` shows what needs a look.
 * - On Windows the service wrapper writes the lines to its log files, and warnings and errors also
 *   go to the Application event log (platform/windows.ts).
 * - A warning that repeats (the same text but for its numbers, such as "renewal 41 failed (3 in a
 *   row)") is written at `warn` once a minute and at `debug` in between: a burst of the same
 *   trouble is one line at `warn`, not one per heartbeat.
 */
import { currentPlatform } from './platform';
import type { LogLevel } from './platform/types';

export type { LogLevel };

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

/** How long a repeated warning stays at debug after it was written at warn. */
export const REPEAT_WARN_MS = 60_000;

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

/** Parses a level name; throws with the accepted names on a typo. */
export function parseLogLevel(value: string | undefined): LogLevel {
  const v = (value ?? 'info').toLowerCase();
  if (v in ORDER) return v as LogLevel;
  throw new Error(`unknown log level "${value}"; use one of: ${Object.keys(ORDER).join(', ')}`);
}

export interface LoggerOptions {
  /** Where a finished line goes (default: stderr, i.e. the journal or the service's log file). */
  write?: (line: string) => void;
  /** The line as the system log wants it (default: the platform's). */
  format?: (level: LogLevel, line: string) => string;
  /** Milliseconds for the repeat rule (default: Date.now; tests pass their own). */
  now?: () => number;
}

/** A logger writing `prefix level message k=v ...` lines. */
export function createLogger(
  prefix: string,
  level: LogLevel,
  write: ((line: string) => void) | LoggerOptions = {},
): Logger {
  const o: LoggerOptions = typeof write === 'function' ? { write } : write;
  const out = o.write ?? ((line: string) => process.stderr.write(line));
  const format =
    o.format ??
    (typeof write === 'function'
      ? (_: LogLevel, line: string) => line
      : (lvl: LogLevel, line: string) => currentPlatform().formatLogLine(lvl, line, process.env));
  const now = o.now ?? Date.now;
  const min = ORDER[level];
  const lastWarned = new Map<string, number>();
  const emit = (requested: LogLevel, message: string, fields?: Record<string, unknown>) => {
    let lvl = requested;
    if (lvl === 'warn') {
      const key = message.replace(/\d+/g, '#');
      const t = now();
      const last = lastWarned.get(key);
      if (last !== undefined && t - last < REPEAT_WARN_MS) lvl = 'debug';
      else {
        lastWarned.set(key, t);
        if (lastWarned.size > 200) lastWarned.delete(lastWarned.keys().next().value as string);
      }
    }
    if (ORDER[lvl] < min) return;
    let line = `${prefix} ${lvl} ${message}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        line += ` ${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`;
      }
    }
    out(`${format(lvl, line)}\n`);
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
  };
}

/** The message of any thrown value, for logs and reports. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  return String(e);
}
