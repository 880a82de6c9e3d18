import type { StartCampaignWorkersOptions } from '../../src/campaigns/workers.js';
import { batchRecipients } from '../../src/message/types.js';
import type { SmsqWorkers, StartWorkersOptions } from '../../src/queue/workers.js';
import { startTestSmsq, type TestSmsq } from './test-smsq.js';

/**
 * Send workers + campaign workers + a producer-side CampaignService on one test prefix.
 * @deprecated use startTestSmsq({ api: false, campaigns: true, ... })
 */
export async function startCampaignStack(
  opts: {
    env?: Record<string, string>;
    holdUntil?: StartWorkersOptions['holdUntil'];
    campaign?: Omit<StartCampaignWorkersOptions, 'config' | 'logger' | 'context'>;
    /** More worker processes (each restores the campaign schedulers at start). */
    extraCampaignWorkers?: number;
  } = {},
) {
  const smsq = await startTestSmsq({
    api: false,
    campaigns: true,
    env: opts.env,
    workerOptions: { holdUntil: opts.holdUntil },
    campaignOptions: opts.campaign,
    logLevel: 'info',
  });
  for (let i = 0; i < (opts.extraCampaignWorkers ?? 0); i += 1) await smsq.startWorkers();
  return {
    config: smsq.config,
    logger: smsq.logger,
    lines: smsq.logs,
    workers: smsq.workers,
    producer: smsq.producer,
    campaigns: smsq.campaigns,
    csv: smsq.csv,
    close: smsq.close,
  };
}

/** @deprecated use TestSmsq */
export type CampaignStack = Awaited<ReturnType<typeof startCampaignStack>>;

/** Every number accepted by the simulator for these requests, one entry per acceptance. */
export async function acceptedNumbers(
  smsq: { workers: SmsqWorkers } | Pick<TestSmsq, 'workers'>,
  requestIds: readonly string[],
): Promise<string[]> {
  const { store } = smsq.workers.context;
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
