import { once } from 'node:events';
import type { AddressInfo, Server, Socket } from 'node:net';

/** A TCP proxy listening on 127.0.0.1: where it listens, and how to stop it. */
export interface LoopbackProxy {
  port: number;
  /** `url` with its host and port replaced by the proxy's. */
  url(url: string): string;
  /** Destroys every socket it holds (`sockets`), then stops listening. */
  close(): Promise<void>;
}

/** Starts `server` on a free loopback port; `sockets` are the ones it opened, for `close()`. */
export async function listenLoopback(server: Server, sockets: ReadonlySet<Socket>): Promise<LoopbackProxy> {
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    port,
    url(url) {
      const u = new URL(url);
      u.hostname = '127.0.0.1';
      u.port = String(port);
      return u.toString().replace(/\/$/, url.endsWith('/') ? '/' : '');
    },
    async close() {
      for (const s of sockets) s.destroy();
      const closed = once(server, 'close');
      server.close();
      await closed;
    },
  };
}
