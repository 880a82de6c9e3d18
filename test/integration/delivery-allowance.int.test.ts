import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logger.js';
import type { Batch, BatchReceipt } from '../../src/message/types.js';
import { createOvhDeliveryReports } from '../../src/providers/ovh/delivery-reports.js';
import type { OvhConfig } from '../../src/providers/ovh/env.js';
import { UNMETERED } from '../../src/providers/types.js';
import { DeliveryReports } from '../../src/queue/delivery-worker.js';
import { duplicateLedgerFields, ledgerFields } from '../../src/queue/ledger.js';
import { smsqKeys } from '../../src/queue/names.js';
import { RecordStore } from '../../src/queue/records.js';
import { startFakeOvh, writeCertFile, type FakeOvh } from '../helpers/fake-ovh.js';
import { spanishMobiles } from '../helpers/numbers.js';
import { redisUrl, testConfig, testPrefix } from '../helpers/smsq.js';
import { onTeardown } from '../helpers/teardown.js';
import { spawnWorker } from '../helpers/worker-process.js';
import { busiestWindow } from '../helpers/windows.js';

describe('delivery-report polls within the provider allowance', () => {
  it('polls 2,000 sent batches with at most OVH_RATE_PER_S calls reaching OVH in any second, and uses that allowance', async () => {
    const fake: FakeOvh = await startFakeOvh();
    onTeardown('fake OVH', () => fake.close());
    const rate = 20;
    const env = {
      SMSQ_PROVIDER: 'ovh',
      ...fake.env,
      OVH_SERVICE_NAME: fake.serviceName,
      OVH_RATE_PER_S: String(rate),
      // First polls 3 s after the sends: the set-up below is over by then.
      SMSQ_DLR_POLL_MS: '3000',
    };
    const config = testConfig({ ...env, SMSQ_PREFIX: testPrefix() });
    const redis = new Redis(redisUrl());
    onTeardown('redis connection', () => redis.disconnect());
    const keys = smsqKeys(config.prefix);
    const store = new RecordStore(redis, keys);
    const reports = new DeliveryReports({
      redis,
      keys,
      prefix: config.prefix,
      store,
      sources: new Map([
        [
          'ovh',
          createOvhDeliveryReports(config.providers.ovh as OvhConfig, {
            timeoutMs: 3_000,
            logger: createLogger('silent'),
            meter: UNMETERED,
            unitMs: 3_000,
          }),
        ],
      ]),
      unitMs: 3_000,
      keepMs: 60_000,
      logger: createLogger('silent'),
    });
    onTeardown('delivery reports', () => reports.close());

    // 2,000 batches recorded sent (as if OVH had accepted them), one recipient each.
    const requestId = 'allowance-r1';
    const batches: Batch[] = spanishMobiles(2_000).map((n, i) => ({
      id: `${requestId}-${i}`,
      requestId,
      provider: 'ovh',
      tag: `sqallow${i}`,
      messages: [{ text: 'Hola', to: [n] }],
      estimatedCredits: 1,
    }));
    await store.createRequest({
      id: requestId,
      createdAt: new Date().toISOString(),
      total: 2_000,
      invalid: [],
      estimatedCredits: 2_000,
      accepted: '{}',
    });
    await store.savePlan(requestId, {
      provider: 'ovh',
      suppressed: 0,
      batches: batches.map((batch) => ({ batch, state: 'planned', attempts: 0 })),
    });
    for (const [i, batch] of batches.entries()) {
      const receipt: BatchReceipt = {
        providerIds: [String(9_000_000 + i)],
        accepted: batch.messages[0]!.to,
        invalid: [],
        creditsCharged: 1,
      };
      await store.recordReceipt(batch, receipt, 'test', {
        sent: ledgerFields(batch, 'sent', receipt),
        duplicate: duplicateLedgerFields(batch, receipt),
      });
      await reports.batchSent(batch.id);
    }

    // The polls run in a real worker process (killed when the test ends); this process only
    // answers as OVH (its clock is then true).
    spawnWorker({
      ...env,
      REDIS_URL: config.redisUrl,
      SMSQ_PREFIX: config.prefix,
      NODE_EXTRA_CA_CERTS: writeCertFile(fake.certPem),
      LOG_LEVEL: 'warn',
    });
    await new Promise((r) => setTimeout(r, 9_000));
    const calls = fake.requests.filter((r) => r.route?.startsWith('GET /sms/{sn}/outgoing'));
    const first = calls[0]?.at ?? 0;
    const window = (calls[calls.length - 1]?.at ?? 0) - first;
    // Counted as OVH counts: arrivals in any second (a call written late is counted by the meter
    // from when it was written).
    const max = busiestWindow(
      calls.map((r) => r.at),
      1_000,
    );
    console.log(
      `report calls: ${calls.length} in ${window} ms; most in any 1-s window at the fake: ${max} (allowance ${rate}/s)`,
    );
    expect(max).toBeLessThanOrEqual(rate);
    // And the allowance is used, not left idle: about `rate` calls a second.
    expect(calls.length).toBeGreaterThanOrEqual(Math.floor((window / 1_000) * rate * 0.8));
    expect(window).toBeGreaterThan(2_000);
  }, 40_000);
});
