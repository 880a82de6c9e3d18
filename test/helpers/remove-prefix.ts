import { connectRedis, slotServer } from '../../src/redis.js';

/**
 * Deletes every key under a prefix (a test's, a benchmark's). `url` is any smsq Redis address; on
 * a Cluster the keys of a `{prefix}` all live on its slot's master (one slot: one DEL per page).
 */
export async function removePrefix(url: string, prefix: string): Promise<void> {
  const redis = connectRedis(url, { maxRetriesPerRequest: 1 });
  try {
    const server = (await slotServer(redis, `${prefix}:x`))();
    let cursor = '0';
    do {
      const [next, keys] = await server.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}
