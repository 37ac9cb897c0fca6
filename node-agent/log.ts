/**
 * A tiny line logger for journald: one line per event, `level message key=value ...`. No
 * dependency, no buffering (a fence must be visible in the journal even if the node resets next).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

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

/** A logger writing `prefix level message k=v ...` lines (stderr, i.e. the journal). */
export function createLogger(
  prefix: string,
  level: LogLevel,
  write: (line: string) => void = (line) => process.stderr.write(line),
): Logger {
  const min = ORDER[level];
  const emit = (lvl: LogLevel, message: string, fields?: Record<string, unknown>) => {
    if (ORDER[lvl] < min) return;
    let line = `${prefix} ${lvl} ${message}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        line += ` ${k}=${typeof v === 'string' && !/\s/.test(v) ? v : JSON.stringify(v)}`;
      }
    }
    write(`${line}\n`);
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
