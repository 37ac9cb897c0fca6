/**
 * The application process is alive: by pid file (the pid it holds exists) or by process name (on
 * Linux a process whose /proc/<pid>/comm or argv[0] base name matches; on Windows an image name,
 * `sqlservr` or `sqlservr.exe`, listed by tasklist).
 */
import { readFileSync } from 'node:fs';
import { currentPlatform } from '../platform';
import { pidAlive } from '../process-util';
import { fail, ok, type Probe } from './probe';

/** The largest pid Linux hands out (pid_max is at most 2^22). */
const PID_MAX = 4_194_304;

/**
 * The pid a pid file holds, strictly: one decimal number (surrounding whitespace and a final
 * newline allowed), above 1 (pid 1 is init, always alive, never the application) and at most
 * pid_max. Anything else ("1abc", "1e9", "7\n12345", " 0x1f") is not a pid.
 */
export function parsePidFile(text: string): number | { error: string } {
  const m = /^\s*(\d{1,7})\s*$/.exec(text);
  const pid = m ? Number(m[1]) : Number.NaN;
  if (!m || !Number.isInteger(pid) || pid > PID_MAX)
    return { error: `holds ${JSON.stringify(text.trim().slice(0, 20))}, not a pid (one decimal number)` };
  if (pid <= 1)
    return { error: `holds ${pid}, which is ${pid === 1 ? 'init' : 'no process'}, not the application` };
  return pid;
}

export function pidProbe(options: { pidFile?: string; processName?: string }): Probe {
  return async () => {
    if (options.pidFile) {
      let text: string;
      try {
        text = readFileSync(options.pidFile, 'utf8');
      } catch (e) {
        return fail(`pid file ${options.pidFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      const pid = parsePidFile(text);
      if (typeof pid !== 'number') return fail(`pid file ${options.pidFile} ${pid.error}`);
      return pidAlive(pid)
        ? ok(`pid ${pid} alive`)
        : fail(`pid ${pid} from ${options.pidFile} is not running`);
    }
    const name = options.processName!;
    const found = await currentPlatform().findProcessByName(name);
    return found !== undefined ? ok(`${name} running as pid ${found}`) : fail(`no process named ${name}`);
  };
}
