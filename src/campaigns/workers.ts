import { Worker } from 'bullmq';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import { configuredProviderIds } from '../providers/index.js';
import { absorbLateErrors, createQueueContext, type QueueContext } from '../queue/context.js';
import { createWorkerConnection } from '../redis.js';
import { createRunProcessor, type RunHooks, type RunJobData, type RunJobResult } from './run-processor.js';
import { CampaignService } from './service.js';
import { webhookTargetFromConfig } from '../webhooks/target.js';
import { CAMPAIGN_RUNS_QUEUE } from './store.js';

export interface CampaignWorkers {
  service: CampaignService;
  worker: Worker<RunJobData, RunJobResult>;
  running(): boolean;
  /** Stops taking runs; a run still active after `graceMs` is interrupted and resumes later. Idempotent. */
  close(graceMs?: number): Promise<void>;
}

export interface StartCampaignWorkersOptions {
  config: Config;
  logger: Logger;
  /** A worker-role context to share (e.g. `startWorkers().context`); default: its own. */
  context?: QueueContext;
  /** Runs processed at once by this process (default 2). */
  concurrency?: number;
  /** Chunks of a run in flight at once (default 8). */
  maxOutstandingChunks?: number;
  chunkSize?: number;
  /** Wall clock for send windows (tests). */
  clock?: () => number;
  hooks?: RunHooks;
}

/**
 * Runs the `campaign-runs` worker and re-upserts every campaign's scheduler, so schedules
 * survive restarts and lost keys. Close it before the context it shares.
 */
export async function startCampaignWorkers(opts: StartCampaignWorkersOptions): Promise<CampaignWorkers> {
  const { config, logger } = opts;
  const log = logger.child({ module: 'campaign-workers' });
  const context =
    opts.context ??
    createQueueContext({
      redisUrl: config.redisUrl,
      prefix: config.prefix,
      defaultCountry: config.defaultCountry,
      role: 'worker',
    });
  const providers = configuredProviderIds(config);
  const service = new CampaignService({ context, config, providers });
  const restored = await service.restoreSchedulers();

  const processor = createRunProcessor({
    context,
    runs: service.runs,
    defaultCountry: config.defaultCountry,
    providers,
    webhookTarget: webhookTargetFromConfig(config.webhooks),
    recordTtlS: config.recordTtlS,
    logger,
    maxOutstandingChunks: opts.maxOutstandingChunks,
    chunkSize: opts.chunkSize,
    clock: opts.clock,
    hooks: opts.hooks,
  });
  // BullMQ does not close a connection it was given: this one is closed below.
  const connection = createWorkerConnection(config.redisUrl);
  const worker = new Worker<RunJobData, RunJobResult>(CAMPAIGN_RUNS_QUEUE, processor, {
    prefix: config.prefix,
    connection,
    concurrency: opts.concurrency ?? 2,
    lockDuration: config.lockDurationMs,
    stalledInterval: config.lockDurationMs,
    // A run whose process died resumes elsewhere, skipping the chunks it enqueued.
    maxStalledCount: 10,
  });
  worker.on('error', (err) => log.error({ err }, 'Campaign worker error'));
  log.info({ campaigns: restored }, 'Campaign workers started; schedulers restored');

  let closing: Promise<void> | undefined;
  return {
    service,
    worker,
    running: () => worker.isRunning(),
    close(graceMs = config.shutdownTimeoutMs) {
      closing ??= (async () => {
        const timer = setTimeout(() => worker.cancelAllJobs('shutdown'), graceMs);
        timer.unref();
        await worker.close().catch((err: unknown) => log.error({ err }, 'Campaign worker close failed'));
        absorbLateErrors(worker);
        clearTimeout(timer);
        connection.disconnect();
        await service.close().catch(() => undefined);
        if (!opts.context) await context.close();
        log.info('Campaign workers stopped');
      })();
      return closing;
    },
  };
}
