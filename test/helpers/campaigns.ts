import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CampaignService } from '../../src/campaigns/service.js';
import { startCampaignWorkers, type StartCampaignWorkersOptions } from '../../src/campaigns/workers.js';
import { configuredProviderIds } from '../../src/providers/index.js';
import { createQueueContext } from '../../src/queue/context.js';
import { startWorkers, type StartWorkersOptions } from '../../src/queue/workers.js';
import { captureLogger, removePrefix, testConfig } from './smsq.js';
import { batchRecipients } from '../../src/message/types.js';

/** Send workers + campaign workers + a producer-side CampaignService on one test prefix. */
export async function startCampaignStack(
  opts: {
    env?: Record<string, string>;
    holdUntil?: StartWorkersOptions['holdUntil'];
    campaign?: Omit<StartCampaignWorkersOptions, 'config' | 'logger' | 'context'>;
    /** More campaign worker processes (each restores the schedulers at start). */
    extraCampaignWorkers?: number;
  } = {},
) {
  const config = testConfig(opts.env);
  const { logger, lines } = captureLogger('info');
  const workers = await startWorkers({ config, logger, holdUntil: opts.holdUntil });
  const campaignWorkers = [
    await startCampaignWorkers({ config, logger, context: workers.context, ...opts.campaign }),
  ];
  for (let i = 0; i < (opts.extraCampaignWorkers ?? 0); i += 1) {
    campaignWorkers.push(await startCampaignWorkers({ config, logger, ...opts.campaign }));
  }
  const producer = createQueueContext({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    defaultCountry: config.defaultCountry,
    role: 'producer',
  });
  // Connected before use: closing a producer connection mid-handshake leaves an unhandled ready-check rejection.
  await producer.ready();
  const campaigns = new CampaignService({
    context: producer,
    config,
    providers: configuredProviderIds(config),
  });
  const dir = mkdtempSync(join(tmpdir(), 'smsq-campaign-'));
  let n = 0;
  return {
    config,
    logger,
    lines,
    workers,
    campaignWorkers,
    producer,
    campaigns,
    /** Writes a CSV file in the stack's temp dir and returns its absolute path. */
    csv(content: string): string {
      n += 1;
      const path = join(dir, `recipients-${n}.csv`);
      writeFileSync(path, content);
      return path;
    },
    async close() {
      await campaigns.close();
      await producer.close();
      for (const w of campaignWorkers) await w.close(1_000);
      await workers.close(1_000);
      await removePrefix(config.redisUrl, config.prefix);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type CampaignStack = Awaited<ReturnType<typeof startCampaignStack>>;

/** Every number accepted by the simulator for these requests, one entry per acceptance. */
export async function acceptedNumbers(
  stack: CampaignStack,
  requestIds: readonly string[],
): Promise<string[]> {
  const { store } = stack.workers.context;
  const out: string[] = [];
  for (const id of requestIds) {
    const request = await store.getRequest(id);
    if (!request) continue;
    for (const record of await store.getBatches(request.batchIds)) {
      if (record.state !== 'sent' || !record.receipt) continue;
      const invalid = new Set(record.receipt.invalid);
      out.push(...batchRecipients(record.batch).filter((n) => !invalid.has(n)));
    }
  }
  return out;
}
