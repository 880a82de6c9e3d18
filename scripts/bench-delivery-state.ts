/**
 * Bytes of Redis memory per recipient of the delivery state (src/queue/delivery-store.ts): 1M
 * recipients in 2,000 batches of 500, written straight through the store's functions (every
 * batch created `pending`, then 97 % delivered, 2 % undelivered with a code, 1 % left pending),
 * on a private redis-server, comparing `used_memory` before and after. The batch records
 * themselves are not written: this is what delivery reports add beside them.
 *
 *   npx tsx scripts/bench-delivery-state.ts [recipients=1000000] [batchSize=500]
 *
 * Needs redis-server on the PATH (its data directory is temporary).
 */
import { Redis } from 'ioredis';
import { DeliveryStore, type DeliveryUpdate } from '../src/queue/delivery-store.js';
import { smsqKeys } from '../src/queue/names.js';
import { spanishMobiles } from '../test/helpers/numbers.js';
import { startPrivateRedis } from '../test/helpers/redis-server.js';

const recipients = Number(process.argv[2] ?? 1_000_000);
const batchSize = Number(process.argv[3] ?? 500);
const batches = Math.ceil(recipients / batchSize);

async function usedMemory(redis: Redis): Promise<number> {
  const info = await redis.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)?.[1] ?? 0);
}

const server = await startPrivateRedis();
const redis = new Redis(server.url);
try {
  const keys = smsqKeys('smsq');
  const store = new DeliveryStore(redis, keys);
  const numbers = spanishMobiles(batchSize);
  const before = await usedMemory(redis);
  const sentAt = Date.now();
  for (let b = 0; b < batches; b++) {
    const batchId = `r${Math.floor(b / 20)}-${b % 20}`;
    const requestId = `r${Math.floor(b / 20)}`;
    const state = { requestId, provider: 'ovh' as const, sentAt };
    await store.initBatch({
      batchId,
      requestId,
      provider: 'ovh',
      accepted: numbers.map(() => true),
      sentAt,
      horizonAt: sentAt + 49 * 3_600_000,
      numericIds: numbers.map((_, i) => 270_000_000 + b * batchSize + i),
      ttlMs: 30 * 24 * 3_600_000,
    });
    const updates: DeliveryUpdate[] = [];
    numbers.forEach((to, index) => {
      const r = index % 100;
      if (r === 0) return; // stays pending
      updates.push(
        r < 3
          ? { index, status: 'undelivered', at: sentAt + 5_000, code: '23', to }
          : { index, status: 'delivered', at: sentAt + 4_000 + index, code: '1', to },
      );
    });
    await store.apply(batchId, state, updates);
  }
  const after = await usedMemory(redis);
  const total = batches * batchSize;
  console.log(
    `${total} recipients in ${batches} batches of ${batchSize}: used_memory ${before} → ${after} bytes, ` +
      `${((after - before) / total).toFixed(2)} bytes per recipient (limit 16)`,
  );
} finally {
  redis.disconnect();
  await server.stop();
}
