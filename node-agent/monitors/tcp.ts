import net from 'node:net';
import { fail, ok, type Probe } from './probe';

/** A TCP connect to host:port succeeds (then the socket is closed at once). */
export function tcpProbe(host: string, port: number): Probe {
  return (signal, timeoutMs) =>
    new Promise((resolve) => {
      const socket = net.connect({ host, port });
      const done = (result: ReturnType<typeof ok>) => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        socket.destroy();
        resolve(result);
      };
      const timer = setTimeout(
        () => done(fail(`connect ${host}:${port}: no answer within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () => done(fail(`connect ${host}:${port}: aborted`));
      signal.addEventListener('abort', onAbort, { once: true });
      socket.once('connect', () => done(ok(`connected to ${host}:${port}`)));
      socket.once('error', (e) =>
        done(fail(`connect ${host}:${port}: ${(e as NodeJS.ErrnoException).code ?? e.message}`)),
      );
    });
}
