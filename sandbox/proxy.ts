/**
 * A TCP proxy on loopback between one sandbox node and the emulator, so that the sandbox can cut a
 * node off from DynamoDB (and the AWS APIs) without restarting anything:
 *
 * - cut: connections are accepted and then left hanging (a blackhole, as a broken network path
 *   behaves), and open ones die;
 * - one-way (`cutResponses`): requests still reach the emulator, and are applied there, but no
 *   answer comes back: a renewal that landed and was never acknowledged. (The other direction alone,
 *   requests lost, is a full cut as the client sees it.)
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export type ProxyMode = 'open' | 'cut' | 'responses-lost';

export class CuttableProxy {
  private server: Server | undefined;
  private sockets = new Set<Socket>();
  mode: ProxyMode = 'open';
  port = 0;

  constructor(private readonly targetPort: number) {}

  get cut(): boolean {
    return this.mode === 'cut';
  }

  async start(): Promise<number> {
    this.server = createServer((client) => {
      this.sockets.add(client);
      client.on('close', () => this.sockets.delete(client));
      client.on('error', () => client.destroy());
      if (this.mode === 'cut') return; // blackhole: never answers
      const upstream = createConnection({ host: '127.0.0.1', port: this.targetPort });
      this.sockets.add(upstream);
      upstream.on('close', () => {
        this.sockets.delete(upstream);
        client.destroy();
      });
      upstream.on('error', () => client.destroy());
      client.on('close', () => upstream.destroy());
      // The mode is looked at per chunk, so that a change applies to open connections too.
      client.on('data', (d) => {
        if (this.mode !== 'cut') upstream.write(d);
      });
      upstream.on('data', (d) => {
        if (this.mode === 'open') client.write(d);
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.server!.address() as { port: number }).port;
    return this.port;
  }

  /** Cut the path: every open connection dies, new ones hang. */
  cutOff(): void {
    this.mode = 'cut';
    for (const s of this.sockets) s.destroy();
  }

  /** Requests still go through (and take effect); their answers are lost. */
  cutResponses(): void {
    this.mode = 'responses-lost';
  }

  heal(): void {
    this.mode = 'open';
    for (const s of this.sockets) s.destroy();
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }
}
