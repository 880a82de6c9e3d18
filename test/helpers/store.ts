import type { Redis } from 'ioredis';
import { connectRedis } from '../../src/redis.js';
import { smsqKeys, type SmsqKeys } from '../../src/queue/names.js';
import { RecordStore } from '../../src/queue/records.js';
import { redisUrl, removePrefix, uniquePrefix } from './smsq.js';
import { onTeardown } from './teardown.js';

export interface TestStore {
  redis: Redis;
  keys: SmsqKeys;
  store: RecordStore;
  /** A request id unique to this store's prefix. */
  requestId: string;
  /** Disconnects and removes the prefix (idempotent; the teardown registry calls it when the test ends). */
  close: () => Promise<void>;
}

/** A record store on the run's Redis under a fresh prefix, for tests of the store's own scripts. */
export function openTestStore(): TestStore {
  const prefix = uniquePrefix();
  const redis = connectRedis(redisUrl());
  const keys = smsqKeys(prefix);
  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      redis.disconnect();
      await removePrefix(redisUrl(), prefix);
    })());
  onTeardown('test store', close);
  return { redis, keys, store: new RecordStore(redis, keys), requestId: `r${prefix}`, close };
}
