/**
 * A TCP proxy on 127.0.0.1 where every new connection takes `openingMs` to open: the server's
 * first bytes (a TLS server's handshake answer) are held that long, then everything flows at once.
 * A pool that grows opens slow connections while its open ones answer at once, as a client of a
 * distant HTTPS provider does: the requests that open a connection leave late, the others do not.
 *
 * ```ts
 * const proxy = await startSlowOpenProxy({ target: new URL(fake.endpointUrl), openingMs: 300 });
 * // point the client at proxy.url(fake.endpointUrl) …
 * ```
 */
import { connect, createServer, type Socket } from 'node:net';
import { listenLoopback, type LoopbackProxy } from './loopback-proxy.js';

export interface SlowOpenProxy extends LoopbackProxy {
  /** Connections opened so far. */
  connections(): number;
}

export async function startSlowOpenProxy(opts: { target: URL; openingMs: number }): Promise<SlowOpenProxy> {
  const sockets = new Set<Socket>();
  let opened = 0;
  const server = createServer((client) => {
    opened += 1;
    const upstream = connect({ host: opts.target.hostname, port: Number(opts.target.port) });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => upstream.destroy());
    client.pipe(upstream);
    // The server's side waits until the connection is "open", then flows without delay.
    upstream.pause();
    setTimeout(() => {
      if (!client.destroyed) upstream.pipe(client);
    }, opts.openingMs);
  });
  return { ...(await listenLoopback(server, sockets)), connections: () => opened };
}
