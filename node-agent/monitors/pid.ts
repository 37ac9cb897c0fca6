/**
 * The application process is alive: by pid file (the pid it holds exists) or by process name (on
 * Linux a process whose /proc/<pid>/comm or argv[0] base name matches; on Windows an image name,
 * `sqlservr` or `sqlservr.exe`, listed by tasklist).
 */
import { readFileSync } from 'node:fs';
import { currentPlatform } from '../platform';
import { pidAlive } from '../process-util';
import { fail, ok, type Probe } from './probe';

export function pidProbe(options: { pidFile?: string; processName?: string }): Probe {
  return async () => {
    if (options.pidFile) {
      let text: string;
      try {
        text = readFileSync(options.pidFile, 'utf8');
      } catch (e) {
        return fail(`pid file ${options.pidFile}: ${(e as NodeJS.ErrnoException).code ?? String(e)}`);
      }
      const pid = Number.parseInt(text.trim(), 10);
      if (!Number.isInteger(pid) || pid <= 0) {
        return fail(`pid file ${options.pidFile} holds "${text.trim().slice(0, 20)}", not a pid`);
      }
      return pidAlive(pid)
        ? ok(`pid ${pid} alive`)
        : fail(`pid ${pid} from ${options.pidFile} is not running`);
    }
    const name = options.processName!;
    const found = await currentPlatform().findProcessByName(name);
    return found !== undefined ? ok(`${name} running as pid ${found}`) : fail(`no process named ${name}`);
  };
}
