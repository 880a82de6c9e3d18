import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';

export interface FreezingProxy {
  /** `redis://127.0.0.1:<port>`: point a process at this instead of Redis. */
  url: string;
  /** Resolves once a client sent `marker`: from then on nothing more reaches Redis. */
  frozen: Promise<void>;
  close(): Promise<void>;
}

/**
 * A TCP proxy in front of Redis that forwards everything until a client sends a command holding
 * `marker` (or one of several) (e.g. the key prefix of the send queue, which BullMQ's add-job script names): that
 * command and everything after it are held, never forwarded, never answered — the client is left
 * waiting between what Redis got and what it did not, as a process that dies at that point.
 */
export async function startFreezingProxy(
  redisUrl: string,
  marker: string | readonly string[],
): Promise<FreezingProxy> {
  const markers = typeof marker === 'string' ? [marker] : marker;
  const longest = Math.max(...markers.map((m) => m.length));
  const target = new URL(redisUrl);
  const sockets = new Set<Socket>();
  let isFrozen = false;
  let onFrozen: () => void = () => undefined;
  const frozen = new Promise<void>((resolve) => (onFrozen = resolve));

  const server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(upstream);
    // The last bytes seen, so a marker cut in two by TCP is still found.
    let tail = '';
    client.on('data', (chunk: Buffer) => {
      if (isFrozen) return;
      const text = tail + chunk.toString('latin1');
      if (markers.some((m) => text.includes(m))) {
        isFrozen = true;
        onFrozen();
        return;
      }
      tail = text.slice(-longest);
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!isFrozen) client.write(chunk);
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  return {
    url: `redis://127.0.0.1:${port}`,
    frozen,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
