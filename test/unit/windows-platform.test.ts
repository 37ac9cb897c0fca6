/**
 * The Windows side of the agent, tested here on Linux with the platform forced: the PowerShell text
 * and argv it would run, the parsing of what Windows tools print, paths under %ProgramData%, and the
 * platform's choices (no watchdog, event log for warnings). What only a real Windows host can show
 * (that PowerShell accepts this text, that New-NetIPAddress takes the address on an EC2 interface)
 * is listed in the README.
 */
import { describe, expect, it } from 'vitest';
import { parseStatusArgs } from '../../node-agent/cli';
import { runtimeAdvice } from '../../node-agent/daemon-main';
import { createLogger } from '../../node-agent/log';
import { journalLine, linux, stderrIsJournal } from '../../node-agent/platform/linux';
import type { RunOptions, RunResult } from '../../node-agent/platform/run';
import {
  BOOT_ID_KEY,
  createWindowsPlatform,
  eventLogArgv,
  imageName,
  parseRegBootId,
  parseTasklistCsv,
  powershellArgv,
  taskkillArgv,
  tasklistArgv,
  vipAddScript,
  vipHoldersScript,
  vipRemoveScript,
  type WindowsDeps,
  windowsStateDir,
  wrapScript,
} from '../../node-agent/platform/windows';
import { decodePowerShell, encodePowerShell, psQuote, psWord } from '../../shared/base/powershell';

/** A Windows whose tools answer from a table, and that records what was run. */
function fakeWindows(answers: Record<string, { status: number; stdout: string }> = {}) {
  const sync: { file: string; args: string[] }[] = [];
  const scripts: string[] = [];
  const fired: { file: string; args: string[] }[] = [];
  let holders = '';
  const deps: WindowsDeps = {
    runSync(file, args) {
      sync.push({ file, args });
      const a = answers[file] ?? { status: 0, stdout: '' };
      return { ...a, stderr: '' };
    },
    async run(options: RunOptions): Promise<RunResult> {
      const script = options.argv[0]!;
      scripts.push(script);
      if (script.startsWith('Get-NetIPAddress'))
        return { code: 0, signal: null, timedOut: false, output: holders };
      return { code: 0, signal: null, timedOut: false, output: '' };
    },
    fire(file, args) {
      fired.push({ file, args });
    },
    env: { ProgramData: 'D:\\ProgramData' },
  };
  return {
    platform: createWindowsPlatform(deps),
    sync,
    scripts,
    fired,
    setHolders: (h: string) => {
      holders = h;
    },
  };
}

describe('PowerShell text', () => {
  it('quotes any value as a literal PowerShell never expands', () => {
    expect(psQuote('plain')).toBe("'plain'");
    expect(psQuote("it's")).toBe("'it''s'");
    expect(psQuote('$env:Path `n $(Remove-Item C:\\)')).toBe("'$env:Path `n $(Remove-Item C:\\)'");
    // PowerShell takes the typographic quotes as quotes too.
    expect(psQuote('a\u2019b')).toBe("'a\u2019\u2019b'");
    expect(psWord('node1')).toBe('node1');
    expect(psWord('172.16.0.10')).toBe('172.16.0.10');
    expect(psWord('--')).toBe("'--'");
    expect(psWord('C:\\Program Files\\x')).toBe("'C:\\Program Files\\x'");
  });

  it('encodes a script as UTF-16LE base64, which no layer between re-quotes', () => {
    const script = "Stop-Service -Name 'MSSQL$PROD'; exit 3 # ünïcode";
    const encoded = encodePowerShell(script);
    expect(encoded).toMatch(/^[A-Za-z0-9+/=]+$/);
    expect(decodePowerShell(encoded)).toBe(script);
    expect(Buffer.from(encoded, 'base64').subarray(0, 4)).toEqual(Buffer.from([0x53, 0, 0x74, 0]));
  });

  it('runs a command through powershell.exe -EncodedCommand, keeping its exit code', () => {
    const [file, args] = powershellArgv('& C:\\app\\stop.ps1');
    expect(file).toBe('powershell.exe');
    expect(args.slice(0, 6)).toEqual([
      '-NoLogo',
      '-NoProfile',
      '-NonInteractive',
      '-ExecutionPolicy',
      'Bypass',
      '-EncodedCommand',
    ]);
    const script = decodePowerShell(args[6]!);
    expect(script).toBe(wrapScript('& C:\\app\\stop.ps1'));
    expect(script).toContain('& C:\\app\\stop.ps1');
    // A terminating error is a failure (1); a native program's exit code is passed on.
    expect(script).toContain('catch { [Console]::Error.WriteLine(($_ | Out-String)); exit 1 }');
    expect(script).toContain('if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }');
    expect(script.split('\n').at(-1)).toBe('exit 0');
  });
});

describe('the Windows platform (forced)', () => {
  it('keeps its state under %ProgramData%', () => {
    expect(windowsStateDir({ ProgramData: 'C:\\ProgramData' })).toBe('C:\\ProgramData\\failover-agent');
    expect(windowsStateDir({})).toBe('C:\\ProgramData\\failover-agent');
    expect(fakeWindows().platform.defaultStateDir).toBe('D:\\ProgramData\\failover-agent');
    expect(linux.defaultStateDir).toBe('/var/lib/failover-agent');
  });

  it('the status command finds the state directory of its platform', () => {
    expect(parseStatusArgs([], {}).stateDir).toBe(linux.defaultStateDir);
    expect(parseStatusArgs(['--state-dir', 'C:\\x', '--json'], {})).toEqual({
      stateDir: 'C:\\x',
      json: true,
      help: false,
    });
  });

  it('tells no frozen state and no start time of a process (no native module): the pid alone', () => {
    const { platform } = fakeWindows();
    expect(platform.processFrozen(process.pid)).toBe(false);
    expect(platform.processStartTime(process.pid)).toBeUndefined();
    // The pid check itself is Node's, the same on both.
    expect(platform.pidAlive(process.pid)).toBe(true);
    expect(platform.pidAlive(0)).toBe(false);
  });

  it('has no watchdog, and says what protects the node instead', () => {
    const { platform } = fakeWindows();
    expect(platform.watchdog.supported).toBe(false);
    expect(platform.watchdog.supported ? '' : platform.watchdog.reason).toMatch(
      /stop scripts' time.*fencing: stop-instance/,
    );
    expect(linux.watchdog).toEqual({ supported: true, device: '/dev/watchdog' });
  });

  it('reads the boot id from the registry once', () => {
    const w = fakeWindows({
      'reg.exe': {
        status: 0,
        stdout: `\r\n${BOOT_ID_KEY}\r\n    BootId    REG_DWORD    0x1a\r\n\r\n`,
      },
    });
    expect(w.platform.bootId()).toBe('26');
    expect(w.platform.bootId()).toBe('26');
    expect(w.sync).toEqual([{ file: 'reg.exe', args: ['query', BOOT_ID_KEY, '/v', 'BootId'] }]);
    expect(parseRegBootId('ERROR: The system was unable to find the specified registry key')).toBeUndefined();
    expect(fakeWindows({ 'reg.exe': { status: 1, stdout: '' } }).platform.bootId()).toBeUndefined();
  });

  it('kills a command tree with taskkill /T /F, never pid 0-4 (System)', () => {
    const w = fakeWindows();
    expect(w.platform.killTree(4242, 'SIGTERM')).toBe(true);
    expect(w.sync).toEqual([{ file: 'taskkill.exe', args: ['/PID', '4242', '/T', '/F'] }]);
    expect(w.platform.killTree(4, 'SIGKILL')).toBe(false);
    expect(taskkillArgv(7)).toEqual(['/PID', '7', '/T', '/F']);
    // Another process's environment is not readable on Windows.
    expect(w.platform.killMarked('abc')).toEqual([]);
  });

  it('finds a process by image name with tasklist (the pid monitor)', async () => {
    expect(imageName('sqlservr')).toBe('sqlservr.exe');
    expect(imageName('java.exe')).toBe('java.exe');
    expect(tasklistArgv('sqlservr')).toEqual(['/FI', 'IMAGENAME eq sqlservr.exe', '/FO', 'CSV', '/NH']);
    const csv =
      '"sqlservr.exe","3120","Services","0","412,345 K"\r\n"sqlservr.exe","3188","Services","0","9,000 K"\r\n';
    expect(parseTasklistCsv(csv, 'sqlservr')).toBe(3120);
    expect(
      parseTasklistCsv('INFO: No tasks are running which match the specified criteria.\r\n', 'sqlservr'),
    ).toBeUndefined();
    expect(parseTasklistCsv('"SQLSERVR.EXE","12","Services","0","1 K"', 'sqlservr.exe')).toBe(12);
    const w = fakeWindows({ 'tasklist.exe': { status: 0, stdout: csv } });
    expect(await w.platform.findProcessByName('sqlservr')).toBe(3120);
    expect(w.sync[0]).toEqual({ file: 'tasklist.exe', args: tasklistArgv('sqlservr') });
  });

  it('puts the VIP on with New-NetIPAddress (active store, not a source address) and off with Remove-NetIPAddress', async () => {
    const add = vipAddScript('172.16.0.10', 'Ethernet 2');
    expect(add).toContain("$alias = 'Ethernet 2'");
    expect(add).toContain(
      "New-NetIPAddress -IPAddress '172.16.0.10' -PrefixLength 32 -InterfaceAlias $alias -SkipAsSource $true -PolicyStore ActiveStore -ErrorAction Stop",
    );
    // Idempotent: nothing added when the address is already there.
    expect(add).toContain(
      "if (-not (Get-NetIPAddress -AddressFamily IPv4 -IPAddress '172.16.0.10' -ErrorAction SilentlyContinue))",
    );
    const byRoute = vipAddScript('172.16.0.10', undefined);
    expect(byRoute).toContain("Get-NetRoute -AddressFamily IPv4 -DestinationPrefix '0.0.0.0/0'");
    expect(byRoute).toContain('FAILOVER_AGENT_VIP_DEV');
    expect(vipRemoveScript('172.16.0.10')).toContain('Remove-NetIPAddress -Confirm:$false -ErrorAction Stop');
    expect(vipHoldersScript('172.16.0.10')).toBe(
      "Get-NetIPAddress -AddressFamily IPv4 -IPAddress '172.16.0.10' -ErrorAction SilentlyContinue | ForEach-Object { $_.InterfaceAlias }",
    );
    // An interface alias from the environment reaches PowerShell as a literal.
    expect(vipAddScript('10.0.0.1', "x'; Remove-Item C:\\ -Recurse; '")).toContain(
      "$alias = 'x''; Remove-Item C:\\ -Recurse; '''",
    );

    const w = fakeWindows();
    const ops = w.platform.vipOps({ FAILOVER_AGENT_VIP_DEV: 'Ethernet' });
    await ops.add('172.16.0.10');
    await ops.remove('172.16.0.10');
    w.setHolders('Ethernet\r\n');
    expect(await ops.holders('172.16.0.10')).toEqual(['Ethernet']);
    expect(w.scripts[0]).toBe(vipAddScript('172.16.0.10', 'Ethernet'));
    expect(w.scripts[1]).toBe(vipRemoveScript('172.16.0.10'));
  });

  it('runs commands and the ping monitor the Windows way', () => {
    const { platform } = fakeWindows();
    expect(platform.shellArgv('Get-Service')).toEqual(powershellArgv('Get-Service'));
    expect(platform.pingArgv('ping', '10.0.0.5', 800)).toEqual(['ping', '-n', '1', '-w', '800', '10.0.0.5']);
    expect(linux.pingArgv('ping', '10.0.0.5', 800)).toEqual(['ping', '-n', '-c', '1', '-W', '1', '10.0.0.5']);
    expect(linux.shellArgv('true')).toEqual(['/bin/sh', ['-c', 'true']]);
  });

  it('copies warnings and errors to the Application event log', () => {
    const w = fakeWindows();
    expect(w.platform.formatLogLine('info', 'x info hello', {})).toBe('x info hello');
    expect(w.fired).toEqual([]);
    w.platform.formatLogLine('warn', 'x warn careful', {});
    w.platform.formatLogLine('error', 'x error broken', {});
    expect(w.fired).toEqual([
      { file: 'eventcreate.exe', args: eventLogArgv('warn', 'x warn careful') },
      { file: 'eventcreate.exe', args: eventLogArgv('error', 'x error broken') },
    ]);
    expect(eventLogArgv('error', 'e')).toEqual([
      '/L',
      'APPLICATION',
      '/T',
      'ERROR',
      '/SO',
      'failover-agent',
      '/ID',
      '3',
      '/D',
      'e',
    ]);
  });
});

describe('logging for the system log', () => {
  it('gives journald each line its priority when stderr is the journal', () => {
    const journal = () => true;
    expect(journalLine('warn', 'a warn b', { JOURNAL_STREAM: '8:1234' }, journal)).toBe('<4>a warn b');
    expect(journalLine('error', 'a', { JOURNAL_STREAM: '8:1234' }, journal)).toBe('<3>a');
    expect(journalLine('info', 'a', { JOURNAL_STREAM: '8:1234' }, journal)).toBe('<6>a');
    expect(journalLine('debug', 'a', { JOURNAL_STREAM: '8:1234' }, journal)).toBe('<7>a');
    expect(journalLine('warn', 'a', {}, () => false)).toBe('a');
    // JOURNAL_STREAM is inherited: it counts only when it names stderr itself.
    expect(stderrIsJournal('8:1234', () => ({ dev: 8, ino: 1234 }))).toBe(true);
    expect(stderrIsJournal('8:1234', () => ({ dev: 8, ino: 99 }))).toBe(false);
    expect(stderrIsJournal(undefined, () => ({ dev: 8, ino: 1234 }))).toBe(false);
    expect(stderrIsJournal('garbage', () => ({ dev: 8, ino: 1234 }))).toBe(false);
    // Here stderr is not the journal, whatever the variable says.
    expect(journalLine('warn', 'a', { JOURNAL_STREAM: '1:1' })).toBe('a');
  });

  it('writes a repeated warning at warn once a minute, at debug in between', () => {
    const lines: string[] = [];
    let t = 0;
    const log = createLogger('fa', 'debug', {
      write: (l) => lines.push(l.trim()),
      format: (_, l) => l,
      now: () => t,
    });
    log.warn('renewal 1 failed (1 in a row)');
    t = 1000;
    log.warn('renewal 2 failed (2 in a row)');
    log.warn('something else');
    t = 61_000;
    log.warn('renewal 9 failed (9 in a row)');
    expect(lines).toEqual([
      'fa warn renewal 1 failed (1 in a row)',
      'fa debug renewal 2 failed (2 in a row)',
      'fa warn something else',
      'fa warn renewal 9 failed (9 in a row)',
    ]);
    const quiet: string[] = [];
    const info = createLogger('fa', 'info', {
      write: (l) => quiet.push(l),
      format: (_, l) => l,
      now: () => 0,
    });
    info.warn('x 1');
    info.warn('x 2');
    expect(quiet).toHaveLength(1);
  });

  it('asks for Node 22 on an older runtime, once, without silencing the SDK', () => {
    expect(runtimeAdvice('20.20.2')).toMatch(/Node\.js 20\.20\.2 is past its end of life.*Node\.js 22 LTS/);
    expect(runtimeAdvice('22.11.0')).toBeUndefined();
    expect(runtimeAdvice('24.1.0')).toBeUndefined();
  });
});
