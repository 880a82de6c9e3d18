/**
 * A TCP proxy on 127.0.0.1 that delays every byte, end and reset by a one-way latency, in both
 * directions: loopback with a network's delay. With it, a server's FIN on an idle keep-alive socket
 * is still "in flight" while the client writes its next request on that socket — the race a real
 * network has and loopback hides.
 *
 * ```ts
 * const proxy = await startLatencyProxy({ target: new URL(fake.url), latencyMs: 50 });
 * // point the client at proxy.url(fake.url) …
 * await proxy.close();
 * ```
 */
import { connect, createServer, type Socket } from 'node:net';
import { listenLoopback, type LoopbackProxy } from './loopback-proxy.js';

export type LatencyProxy = LoopbackProxy;

/** Forwards `from`'s bytes, end and destruction to `to`, each `latencyMs` later and in order. */
function pipeDelayed(from: Socket, to: Socket, latencyMs: number): void {
  // Equal delays fire in the order they were set, so chunks, end and reset keep their order.
  const later = (fn: () => void) => setTimeout(fn, latencyMs);
  from.on('data', (chunk: Buffer) => later(() => void (to.destroyed || to.writableEnded || to.write(chunk))));
  from.on('end', () => later(() => void (to.destroyed || to.end())));
  from.on('close', (hadError) => {
    if (hadError) later(() => to.destroy());
  });
  from.on('error', () => undefined);
}

export async function startLatencyProxy(opts: { target: URL; latencyMs: number }): Promise<LatencyProxy> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (client) => {
    const upstream = connect({
      host: opts.target.hostname,
      port: Number(opts.target.port),
      allowHalfOpen: true,
    });
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    // A write to a side the peer already closed fails: the bytes never reach it, the other side is reset.
    upstream.on('error', () => client.destroy());
    client.on('error', () => upstream.destroy());
    pipeDelayed(client, upstream, opts.latencyMs);
    pipeDelayed(upstream, client, opts.latencyMs);
    // Once both directions ended, nothing more can pass.
    for (const [a, b] of [
      [client, upstream],
      [upstream, client],
    ] as const) {
      a.on('end', () => {
        if (b.readableEnded) setTimeout(() => a.destroy(), opts.latencyMs);
      });
    }
  });
  return listenLoopback(server, sockets);
}
