/**
 * Webhook delivery throughput: events/s from "entries waiting in Redis" to "every event received
 * and its signature verified" by a loopback receiver (test/helpers/webhook-receiver.ts, which
 * verifies each with standardwebhooks), through the real drain, queue, signing and undici.
 * Each of `events` requests gets one `{"type":"delivered"}` entry (the delivery-report side's
 * contract), so no coalescing window is waited on.
 *
 *   npx tsx scripts/bench-webhooks.ts [events=2000] [concurrency=16]
 *
 * Uses REDIS_URL (default redis://127.0.0.1:6379) under a throw-away prefix, removed afterwards.
 */
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/logger.js';
import { startWorkers } from '../src/queue/workers.js';
import { removePrefix } from '../test/helpers/remove-prefix.js';
import { startWebhookReceiver } from '../test/helpers/webhook-receiver.js';

const [events = 2_000, concurrency = 16] = process.argv.slice(2).map(Number);
const redisUrl = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `benchwh${randomBytes(4).toString('hex')}`;

const receiver = await startWebhookReceiver();
const config = loadConfig({
  REDIS_URL: redisUrl,
  SMSQ_PREFIX: prefix,
  SMSQ_WEBHOOK_SECRET: receiver.secret,
  SMSQ_WEBHOOK_ALLOW_PRIVATE: 'true',
  SMSQ_WEBHOOK_CONCURRENCY: String(concurrency),
  LOG_LEVEL: 'warn',
});
const workers = await startWorkers({ config, logger: createLogger('warn') });
const { store, redis, keys } = workers.context;
try {
  const ids = Array.from({ length: events }, (_, i) => `rbench${String(i).padStart(26, '0')}`);
  for (const id of ids) {
    await store.createRequest({
      id,
      createdAt: new Date().toISOString(),
      total: 1,
      invalid: [],
      estimatedCredits: 1,
      accepted: '{}',
      webhookUrl: receiver.url,
    });
  }
  const entry = JSON.stringify({
    type: 'delivered',
    delivery: { pending: 0, delivered: 1, undelivered: 0, expired: 0, unreported: 0 },
  });
  const start = performance.now();
  for (let i = 0; i < ids.length; i += 500) {
    const multi = redis.multi();
    for (const id of ids.slice(i, i + 500)) {
      multi.rpush(keys.webhookUpdates(id), entry);
      multi.zadd(keys.webhookDue, 'NX', Date.now(), id);
    }
    await multi.exec();
  }
  await receiver.waitFor((r) => r.delivered().length >= events, 300_000);
  const seconds = (performance.now() - start) / 1000;
  if (receiver.rejected.length > 0) throw new Error(`${receiver.rejected.length} signatures did not verify`);
  console.log(
    JSON.stringify({
      events,
      concurrency,
      seconds: Number(seconds.toFixed(2)),
      eventsPerSecond: Math.round(events / seconds),
      requestsReceived: receiver.requests.length,
    }),
  );
} finally {
  await workers.close(1_000);
  await receiver.close();
  await removePrefix(redisUrl, prefix);
}
