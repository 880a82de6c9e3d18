import { performance } from 'node:perf_hooks';
import { Worker } from 'bullmq';
import { holdUntilWindow } from '../message/send-window.js';
import type { Config } from '../config.js';
import type { Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import { createDeliveryReportSources, createProviders } from '../providers/index.js';
import { providerAllowanceMeters } from './allowance.js';
import { timeProviders, type ProviderRequestObserver } from '../providers/timed-provider.js';
import { InflightSizer } from './inflight.js';
import type { SmsProvider } from '../providers/types.js';
import { createWorkerConnection, slotServer } from '../redis.js';
import { createBatchProcessor, type BatchProcessorDeps } from './batch-processor.js';
import { absorbLateErrors, createQueueContext, type QueueContext } from './context.js';
import {
  checkRedisDurability,
  createDurabilityGate,
  DURABILITY_TIMEOUT_MS,
  type DurabilityGate,
} from './durability.js';
import { startEnqueueRepair } from './enqueue-repair.js';
import type { BatchJobData, BatchJobResult, SendJobData } from './jobs.js';
import { startLedgerTrim } from './ledger.js';
import { batchQueueName, isLane, LANES, sendQueueName, type Lane } from './names.js';
import { CircuitBreaker } from './circuit.js';
import { Failover } from './failover.js';
import { ProviderControl } from './provider-control.js';
import { createSplitter, type SendJobResult } from './splitter.js';
import type { WebhookDeliveryResult } from '../webhooks/delivery.js';
import { startWebhookWorkers } from '../webhooks/worker.js';
import { behindSends } from './delivery-meter.js';
import { DeliveryReports, sendsWaiting } from './delivery-worker.js';

export interface SmsqWorkers {
  context: QueueContext;
  /** Delivery reports of sent batches (the `dlr` queue and its worker). */
  deliveryReports: DeliveryReports;
  control: ProviderControl;
  /** Per-provider circuits (counted only with SMSQ_ROUTES). */
  circuit: CircuitBreaker;
  /** Present with SMSQ_ROUTES: moves routed planned batches off unavailable providers. */
  failover?: Failover;
  providers: ReadonlyMap<ProviderId, SmsProvider>;
  /** The lanes this process works (StartWorkersOptions.lanes, checked). */
  lanes: readonly Lane[];
  workers: Worker[];
  /**
   * Await right after a batch's `planned → sending` write, before its provider call: the write is
   * then on disk (WAITAOF) and/or on SMSQ_REDIS_MIN_REPLICAS replicas (WAIT), as this Redis allows.
   * Runs on `context.redis`, the connection of `context.store`. Throws RedisNotDurableError.
   */
  awaitDurable: DurabilityGate;
  /** True when every worker is running (for /readyz). */
  running(): boolean;
  /**
   * Two-stage stop: stop fetching and let active batches finish; after `graceMs` (default
   * SMSQ_SHUTDOWN_TIMEOUT_MS), abort the provider calls still running. Idempotent.
   */
  close(graceMs?: number): Promise<void>;
  /** Aborts the provider calls in flight now (their batches are settled as the error table says). */
  abort(): void;
}

export interface StartWorkersOptions {
  config: Config;
  logger: Logger;
  /** Run batch workers for these providers only (default: every configured one); the splitter always runs. */
  only?: readonly ProviderId[];
  /**
   * The lanes this process works (`smsq worker --lane`; default both). Without `bulk` it runs only
   * the priority lane's splitter and batch workers and none of the background duties (see
   * `backgroundDuties`), so nothing but `high` sends competes for its CPU.
   */
  lanes?: readonly Lane[];
  /** Times every provider request (the metrics' histogram). */
  observeProviderRequest?: ProviderRequestObserver;
  /** Injected providers (tests, benchmarks); default: created from config, each call within its allowance. */
  providers?: ReadonlyMap<ProviderId, SmsProvider>;
  /** Send-window check before each batch send (default: the batch's own window, see src/message/send-window.ts). */
  holdUntil?: BatchProcessorDeps['holdUntil'];
  /** Called once per request repaired after an interrupted enqueue (counted by `smsq_enqueue_repaired_total`). */
  onEnqueueRepaired?: (requestId: string) => void;
  /** Called once per webhook delivery attempt with its result (`smsq_webhook_deliveries_total`). */
  onWebhookDelivery?: (result: WebhookDeliveryResult) => void;
}

/**
 * Whether a process working `lanes` runs the duties that serve no send of its own and need one
 * process anywhere, not every one: the delivery-report and webhook workers, enqueue repair and the
 * ledger trim (and, in src/service/start.ts, the campaign-run worker). Those are left to the
 * processes that work the bulk lane; a priority-only process keeps everything its own sends need
 * (allowance meter, durability gate, circuit, failover of its batches, 429 handling, probing of a
 * paused provider).
 */
export function backgroundDuties(lanes: readonly Lane[]): boolean {
  return lanes.includes('bulk');
}

/** The lanes of StartWorkersOptions.lanes, in LANES order; an empty list or an unknown lane is refused. */
export function workerLanes(lanes: readonly string[] | undefined): readonly Lane[] {
  if (lanes === undefined) return LANES;
  const unknown = lanes.filter((lane) => !isLane(lane));
  if (unknown.length > 0 || lanes.length === 0) {
    throw new Error(
      `lanes: expected one or more of ${LANES.join(', ')}, got ${lanes.length === 0 ? 'none' : unknown.join(', ')}`,
    );
  }
  return LANES.filter((lane) => lanes.includes(lane));
}

/** Send jobs each lane's splitter runs at once, per process. */
const SPLITTER_CONCURRENCY = 4;

/** Socket error codes of a Redis that is down or unreachable: ioredis reconnects by itself. */
const CONNECTION_ERROR_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** At most one log line per worker per this many ms while its Redis is unreachable. */
const CONNECTION_LOG_INTERVAL_MS = 10_000;

/**
 * A worker's error listener. While Redis is unreachable every reconnect attempt of every
 * connection emits an error: log those as warnings (the worker waits and reconnects), once per
 * interval with how many were left out, instead of a line per attempt; anything else is an error.
 */
function reportWorkerError(log: Logger, queue: string): (err: Error) => void {
  let lastLoggedAt = 0;
  let unlogged = 0;
  return (err) => {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === undefined || !CONNECTION_ERROR_CODES.has(code)) {
      log.error({ err, queue }, 'Worker error');
      return;
    }
    if (Date.now() - lastLoggedAt < CONNECTION_LOG_INTERVAL_MS) {
      unlogged += 1;
      return;
    }
    log.warn({ err, queue, unlogged }, 'Redis unreachable; the worker reconnects by itself');
    lastLoggedAt = Date.now();
    unlogged = 0;
  };
}

/** Starts the splitter and one batch worker per provider, against one Redis. */
export async function startWorkers(opts: StartWorkersOptions): Promise<SmsqWorkers> {
  const { config, logger } = opts;
  const log = logger.child({ module: 'workers' });
  const lanes = workerLanes(opts.lanes);
  const background = backgroundDuties(lanes);
  const context = createQueueContext({
    redisUrl: config.redisUrl,
    prefix: config.prefix,
    defaultCountry: config.defaultCountry,
    role: 'worker',
  });
  // Before anything sends: say what this Redis can lose; refuse to start with SMSQ_REQUIRE_DURABLE_REDIS.
  // On a Cluster, persistence and replicas are those of the master holding the prefix's slot.
  const prefixServer = await slotServer(context.redis, context.keys.ledger).catch(async (err: unknown) => {
    await context.close();
    throw err;
  });
  const durability = await checkRedisDurability(prefixServer(), {
    require: config.requireDurableRedis,
    minReplicas: config.redisMinReplicas,
    logger,
  }).catch(async (err: unknown) => {
    await context.close();
    throw err;
  });
  const awaitDurable = createDurabilityGate(context.redis, {
    minReplicas: config.redisMinReplicas,
    // Kept well inside the provider deadline: this wait comes before the call, in the `sending` state.
    timeoutMs: Math.min(DURABILITY_TIMEOUT_MS, config.providerTimeoutMs),
    require: config.requireDurableRedis,
    facts: durability.facts,
    server: prefixServer,
    logger,
  });
  const meterFor = providerAllowanceMeters({ redis: context.redis, keys: context.keys, config });
  const created =
    opts.providers ??
    (await createProviders(config.providers, { logger, timeoutMs: config.providerTimeoutMs, meterFor }));
  // Each provider's batches in flight follow how long a batch holds its slot once its call was
  // granted (the call, and the Redis writes around it), unless fixed by SMSQ_BATCH_CONCURRENCY:
  // allowance × that time must be under way to use the allowance.
  const sizers = new Map(
    [...created.keys()].map(
      (id) =>
        [
          id,
          new InflightSizer({
            ratePerSecond: config.providers[id]?.ratePerSecond ?? 1,
            max: config.maxInflight,
          }),
        ] as const,
    ),
  );
  const providers = opts.observeProviderRequest
    ? timeProviders(created, opts.observeProviderRequest)
    : created;
  const batchQueues = new Map([...providers.keys()].map((id) => [id, context.batchQueues(id)] as const));
  // Failover needs routes; without SMSQ_ROUTES no batch has one, and nothing here runs.
  let failover: Failover | undefined;
  const circuit = new CircuitBreaker({
    redis: context.redis,
    keys: context.keys,
    failures: config.circuit.failures,
    failbackMs: config.circuit.failbackMs,
    logger,
    onOpen: () => failover?.trigger(),
  });
  const routed = config.routes.length > 0;
  if (routed) {
    failover = new Failover({
      store: context.store,
      circuit,
      providers,
      batchQueues,
      retry: { attempts: config.attempts, backoffMs: config.backoffMs },
      recordTtlS: config.recordTtlS,
      logger,
      scanLanes: lanes,
    });
  }
  const control = new ProviderControl({
    redis: context.redis,
    keys: context.keys,
    queues: batchQueues,
    providers,
    probeIntervalMs: config.probeIntervalMs,
    logger,
    ...(routed ? { circuit } : {}),
  });

  const workerOpts = {
    prefix: config.prefix,
    lockDuration: config.lockDurationMs,
    // A dead worker's jobs are found within lockDuration + stalledInterval.
    stalledInterval: config.lockDurationMs,
    // A batch that stalls comes back to `sending` and is reconciled, so let it come back.
    maxStalledCount: 10,
  };

  // A connection passed to a Worker is "shared": worker.close() leaves it open, so we close them.
  const connections: ReturnType<typeof createWorkerConnection>[] = [];
  const workerConnection = () => {
    const connection = createWorkerConnection(config.redisUrl);
    connections.push(connection);
    return connection;
  };

  const deliveryReports = new DeliveryReports({
    redis: context.redis,
    keys: context.keys,
    prefix: config.prefix,
    store: context.store,
    // Report calls share each provider's allowance, behind its sends.
    sources: await createDeliveryReportSources(config.providers, {
      logger,
      timeoutMs: config.providerTimeoutMs,
      unitMs: config.dlrPollMs,
      meterFor: (id) => behindSends(meterFor(id), () => sendsWaiting(batchQueues.get(id))),
    }),
    unitMs: config.dlrPollMs,
    keepMs: config.recordTtlS * 1_000,
    logger,
  });

  const splitter = createSplitter({
    store: context.store,
    providers,
    batchQueues,
    suppressions: context.suppressions,
    defaultProvider: config.defaultProvider,
    routes: config.routes,
    attempts: config.attempts,
    backoffMs: config.backoffMs,
    recordTtlS: config.recordTtlS,
    logger,
  });
  // One splitter per lane, each with its own slots: a campaign's chunks, planned and finalized in
  // the bulk lane's, never hold the slot a `high` request waits for.
  const workers: Worker[] = lanes.map(
    (lane) =>
      new Worker<SendJobData, SendJobResult>(sendQueueName(lane), splitter, {
        ...workerOpts,
        connection: workerConnection(),
        concurrency: SPLITTER_CONCURRENCY,
      }),
  );
  // Best effort: a request whose recipients were all final before it completed gets its
  // `delivered` webhook entry here (the report that finishes a completed request pushes it itself).
  for (const worker of workers) {
    worker.on('completed', (job: { data: SendJobData }) => {
      deliveryReports
        .requestCompleted(job.data.requestId)
        .catch((err: unknown) => log.warn({ err }, 'Delivery state of a completed request not checked'));
    });
  }

  for (const [id, provider] of providers) {
    if (opts.only && !opts.only.includes(id)) continue;
    const sizer = sizers.get(id)!;
    // When each job's send was granted its call (keyed by the job's abort signal).
    const grantedAt = new WeakMap<AbortSignal, number>();
    const sendMeter = meterFor(id);
    const processBatch = createBatchProcessor({
      store: context.store,
      provider,
      control,
      ambiguous: config.ambiguous,
      attempts: config.attempts,
      providerTimeoutMs: config.providerTimeoutMs,
      // Right after the claim, on the connection that wrote it (WAIT/WAITAOF cover that connection).
      durable: awaitDurable,
      // Sends take their call from the allowance here, before they are marked begun (the provider
      // meters its other calls itself).
      meter: async (signal, priority) => {
        const grant = await sendMeter(signal, priority);
        grantedAt.set(signal, performance.now());
        return grant;
      },
      logger,
      holdUntil: opts.holdUntil ?? holdUntilWindow,
      ...(failover ? { circuit, failover } : {}),
    });
    // One batch worker per lane, each sized alike (both follow the provider's one sizer): the
    // priority lane alone can use the whole allowance, and the bulk lane's batches waiting at the
    // meter never hold its slots. At the meter itself, `high` batches are granted first.
    for (const lane of lanes) {
      const worker: Worker<BatchJobData, BatchJobResult> = new Worker<BatchJobData, BatchJobResult>(
        batchQueueName(id, lane),
        // A sent batch gets its delivery state and polls before its job completes (a re-run of a
        // sent batch returns `sent` again, so a crash in between is completed by the re-run).
        async (job, token, signal) => {
          try {
            const result = await processBatch(job, token, signal);
            if (result.state === 'sent') await deliveryReports.batchSent(result.batchId);
            return result;
          } finally {
            const granted = signal && grantedAt.get(signal);
            if (granted) sizer.observe(performance.now() - granted);
            if (config.batchConcurrency === undefined && worker.concurrency !== sizer.size)
              worker.concurrency = sizer.size;
          }
        },
        {
          ...workerOpts,
          connection: workerConnection(),
          concurrency: config.batchConcurrency ?? sizer.size,
          // The allowance is kept by the meter (src/queue/allowance.ts: any 1-s window, every process).
          // The limiter's count is never reached; it only carries a provider's 429, which pauses
          // the provider's queues for its Retry-After (ProviderControl.rateLimit).
          limiter: { max: Number.MAX_SAFE_INTEGER - 1, duration: 1_000 },
        },
      );
      workers.push(worker);
    }
  }

  // Webhooks: their own queue and concurrency, so a slow receiver never holds up sending.
  // A priority-only process leaves these to the bulk lane's (see backgroundDuties).
  const webhooks = background
    ? startWebhookWorkers({
        config,
        logger,
        connections: { commands: workerConnection(), worker: workerConnection() },
        onDelivery: opts.onWebhookDelivery,
      })
    : undefined;
  if (webhooks) workers.push(webhooks.worker);

  if (background) workers.push(deliveryReports.startWorker(workerConnection(), workerOpts));
  for (const worker of workers) worker.on('error', reportWorkerError(log, worker.name));
  control.startProbing();
  failover?.start();
  const repair = background
    ? startEnqueueRepair({
        redis: context.redis,
        keys: context.keys,
        sendQueue: context.sendQueue,
        afterMs: config.enqueueRepairAfterMs,
        recordTtlS: config.recordTtlS,
        logger,
        onRepaired: opts.onEnqueueRepaired,
      })
    : undefined;
  const ledgerTrim = background
    ? startLedgerTrim({
        redis: context.redis,
        key: context.keys.ledger,
        retentionDays: config.ledgerRetentionDays,
        logger,
      })
    : undefined;
  // A provider paused before this process started is probed at once, not after a full interval.
  control.probePaused().catch((err: unknown) => log.error({ err }, 'Probe of paused providers failed'));
  log.info(
    { providers: [...providers.keys()], defaultProvider: config.defaultProvider, lanes },
    'Workers started',
  );

  let closing: Promise<void> | undefined;
  const abort = () => {
    for (const worker of workers) worker.cancelAllJobs('shutdown');
  };
  return {
    abort,
    awaitDurable,
    context,
    control,
    circuit,
    ...(failover ? { failover } : {}),
    deliveryReports,
    providers,
    lanes,
    workers,
    running: () => workers.every((w) => w.isRunning()),
    close(graceMs = config.shutdownTimeoutMs) {
      closing ??= (async () => {
        control.stop();
        failover?.stop();
        repair?.stop();
        await ledgerTrim?.stop();
        const timer = setTimeout(() => {
          log.warn({ graceMs }, 'Shutdown grace period over; aborting provider calls in flight');
          abort();
        }, graceMs);
        timer.unref();
        await Promise.all(
          workers.map((w) =>
            w
              .close()
              .catch((err: unknown) => log.error({ err }, 'Worker close failed'))
              .finally(() => absorbLateErrors(w)),
          ),
        );
        clearTimeout(timer);
        await webhooks?.stop().catch((err: unknown) => log.error({ err }, 'Webhook drain stop failed'));
        await deliveryReports.close();
        for (const connection of connections) connection.disconnect();
        for (const provider of providers.values()) await provider.close().catch(() => undefined);
        await context.close();
        log.info('Workers stopped');
      })();
      return closing;
    },
  };
}
