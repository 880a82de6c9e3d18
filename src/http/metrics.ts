import type { Queue } from 'bullmq';
import type { FastifyPluginCallback } from 'fastify';
import type { Redis } from 'ioredis';
import { deliveryMetricsText } from '../queue/delivery-metrics.js';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { ProviderId } from '../message/types.js';
import { readLedger, type LedgerEntry } from '../queue/ledger.js';
import { WEBHOOK_DELIVERY_RESULTS } from '../webhooks/delivery.js';
import { withDeadline } from './redis-guard.js';

/** smsq's own metrics, in their own registry (nothing global, so tests and processes never share). */
export interface SmsqMetrics {
  registry: Registry;
  /** Recipients by provider and outcome, from the ledger (accepted, invalid, rejected, unknown). */
  recipients: Counter<'provider' | 'outcome'>;
  /** Credits charged by provider, from the ledger (an estimate where the ledger says so). */
  credits: Counter<'provider'>;
  /** Recipients sent twice (a provider accepted a batch already sent), from the ledger's `duplicate` lines. */
  duplicateSends: Counter<'provider'>;
  /** Duration of provider requests, observed where the providers run (see src/providers/timed-provider.ts). */
  providerSeconds: Histogram<'provider' | 'outcome'>;
  /** 1 while a provider is paused for its account (credit, credentials). */
  providerPaused: Gauge<'provider'>;
  /** 1 while a provider's circuit is open or half-open (routed batches fail over from it), from Redis. */
  circuitOpen: Gauge<'provider'>;
  /** Batches failed over, by the provider left, the one taken and why (`paused`, `circuit-open`), from Redis. */
  failovers: Counter<'from' | 'to' | 'reason'>;
  /** 1 when the last scrape reached Redis. */
  redisUp: Gauge;
  /** Age of the oldest job waiting in each queue (0 when none waits): BullMQ exports counts only. */
  queueOldestWaiting: Gauge<'queue'>;
  /**
   * Requests completed with every recipient `failed` because their enqueue was interrupted (record
   * written, send job never added); counted by the worker process whose sweep repaired them.
   */
  enqueueRepaired: Counter;
  /** Webhook delivery attempts by result (delivered, retried, failed, gone, refused), counted by the worker process that made them. */
  webhookDeliveries: Counter<'result'>;
  /** Observer for the providers' timing decorator. */
  observeProviderRequest(o: { provider: ProviderId; outcome: string; seconds: number }): void;
}

export function createSmsqMetrics(opts: { defaultMetrics?: boolean } = {}): SmsqMetrics {
  const registry = new Registry();
  if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const recipients = new Counter({
    name: 'smsq_recipients_total',
    help: 'Recipients of provider requests that reached a final state, by provider and outcome (from the ledger)',
    labelNames: ['provider', 'outcome'] as const,
    registers: [registry],
  });
  const credits = new Counter({
    name: 'smsq_credits_charged_total',
    help: 'Credits charged by the providers (from the ledger; estimated where the provider did not say)',
    labelNames: ['provider'] as const,
    registers: [registry],
  });
  const duplicateSends = new Counter({
    name: 'smsq_duplicate_sends_total',
    help: 'Recipients a provider accepted a second time for the same batch (from the ledger); anything above 0 needs a look',
    labelNames: ['provider'] as const,
    registers: [registry],
  });
  const providerSeconds = new Histogram({
    name: 'smsq_provider_request_seconds',
    help: 'Duration of one provider request (send), by provider and outcome (ok or the error class)',
    labelNames: ['provider', 'outcome'] as const,
    buckets: [0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const providerPaused = new Gauge({
    name: 'smsq_provider_paused',
    help: '1 while the provider is paused for its account (credit or credentials); its jobs are kept',
    labelNames: ['provider'] as const,
    registers: [registry],
  });
  const circuitOpen = new Gauge({
    name: 'smsq_circuit_open',
    help: '1 while the provider circuit is open or half-open: routed planned batches fail over from it (SMSQ_ROUTES)',
    labelNames: ['provider'] as const,
    registers: [registry],
  });
  const failovers = new Counter({
    name: 'smsq_failovers_total',
    help: 'Planned batches moved to the next provider of their route, by provider left, provider taken and reason',
    labelNames: ['from', 'to', 'reason'] as const,
    registers: [registry],
  });
  const redisUp = new Gauge({
    name: 'smsq_redis_up',
    help: '1 when the last /metrics scrape reached Redis',
    registers: [registry],
  });
  const queueOldestWaiting = new Gauge({
    name: 'smsq_queue_oldest_waiting_seconds',
    help: 'Age of the oldest job waiting (or prioritized) in the queue, 0 when none waits',
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  const enqueueRepaired = new Counter({
    name: 'smsq_enqueue_repaired_total',
    help: 'Requests whose enqueue was interrupted (record, no send job), completed with their recipients failed',
    registers: [registry],
  });
  const webhookDeliveries = new Counter({
    name: 'smsq_webhook_deliveries_total',
    help: 'Webhook delivery attempts by result: delivered (2xx), retried, failed (given up after 24 h), gone (410, or dropped after one), refused (blocked address)',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  // Every result from 0, so rates and alerts see a series before the first delivery.
  for (const result of WEBHOOK_DELIVERY_RESULTS) webhookDeliveries.inc({ result }, 0);
  return {
    registry,
    recipients,
    webhookDeliveries,
    credits,
    duplicateSends,
    providerSeconds,
    providerPaused,
    circuitOpen,
    failovers,
    redisUp,
    queueOldestWaiting,
    enqueueRepaired,
    observeProviderRequest({ provider, outcome, seconds }) {
      providerSeconds.observe({ provider, outcome }, seconds);
    },
  };
}

/** Adds one ledger entry to the counters. The ledger is the one record of what each provider request cost. */
export function countLedgerEntry(metrics: SmsqMetrics, entry: LedgerEntry): void {
  const provider = entry.provider;
  if (entry.state === 'duplicate') {
    metrics.duplicateSends.inc({ provider }, entry.accepted);
  } else if (entry.state === 'sent') {
    if (entry.accepted > 0) metrics.recipients.inc({ provider, outcome: 'accepted' }, entry.accepted);
    if (entry.invalid > 0) metrics.recipients.inc({ provider, outcome: 'invalid' }, entry.invalid);
  } else if (entry.recipients > 0) {
    metrics.recipients.inc({ provider, outcome: entry.state }, entry.recipients);
  }
  if (entry.creditsCharged > 0) metrics.credits.inc({ provider }, entry.creditsCharged);
}

/**
 * Follows the ledger stream from this process's start: each scrape reads the entries appended
 * since the last one (XRANGE, exclusive of the last id), so the counters work in any process that
 * reaches Redis, `smsq api` included, and agree with `smsq ledger` by construction.
 */
export class LedgerFollower {
  private lastId: string | undefined;
  private readonly startMs: number;
  private running: Promise<void> | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly key: string,
    private readonly metrics: SmsqMetrics,
    opts: { since?: number } = {},
  ) {
    this.startMs = opts.since ?? Date.now();
  }

  /** Reads what is new (at most `maxEntries` per call; the rest comes with the next one). Concurrent calls share one read. */
  catchUp(maxEntries = 100_000): Promise<void> {
    this.running ??= this.read(maxEntries).finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  private async read(maxEntries: number): Promise<void> {
    // readLedger starts at a millisecond; entries of that millisecond already counted are skipped.
    const since = new Date(this.lastId ? Number(this.lastId.split('-')[0]) : this.startMs);
    let read = 0;
    for await (const entry of readLedger(this.redis, this.key, { since, pageSize: 1_000 })) {
      if (this.lastId && compareStreamIds(entry.entryId, this.lastId) <= 0) continue;
      countLedgerEntry(this.metrics, entry);
      this.lastId = entry.entryId;
      if (++read >= maxEntries) return;
    }
  }
}

/** Orders two stream ids (`<ms>-<seq>`). */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0, as = 0] = a.split('-').map(Number);
  const [bm = 0, bs = 0] = b.split('-').map(Number);
  return am !== bm ? am - bm : as - bs;
}

/**
 * Merges several Prometheus texts (one per BullMQ queue) into one valid exposition: each metric's
 * HELP and TYPE once, then all its samples (a repeated TYPE line is a parse error for Prometheus).
 */
export function mergePrometheusTexts(texts: readonly string[]): string {
  const families = new Map<string, { meta: string[]; samples: string[] }>();
  const family = (name: string) => {
    let f = families.get(name);
    if (!f) {
      f = { meta: [], samples: [] };
      families.set(name, f);
    }
    return f;
  };
  for (const text of texts) {
    for (const line of text.split('\n')) {
      if (line.trim() === '') continue;
      const meta = /^# (HELP|TYPE) (\S+)/.exec(line);
      if (meta) {
        const f = family(meta[2]!);
        if (!f.meta.some((m) => m.startsWith(`# ${meta[1]} `))) f.meta.push(line);
      } else if (!line.startsWith('#')) {
        family(/^[^{\s]+/.exec(line)?.[0] ?? line).samples.push(line);
      }
    }
  }
  return [...families.values()].map((f) => [...f.meta, ...f.samples].join('\n')).join('\n') + '\n';
}

export interface MetricsRouteOptions {
  metrics: SmsqMetrics;
  /** A producer connection, and its readiness check (fails within a second while Redis is down). */
  redis: Redis;
  ready: () => Promise<void>;
  ledgerKey: string;
  pausedKey: (provider: ProviderId) => string;
  /** Hash of a provider's circuit (src/queue/circuit.ts); without it smsq_circuit_open is not reported. */
  circuitKey?: (provider: ProviderId) => string;
  /** Hash of failover counts, field `<from>|<to>|<reason>` (src/queue/failover.ts). */
  failoversKey?: string;
  providers: readonly ProviderId[];
  queues: () => readonly Queue[];
  /**
   * Count recipients and credits from the ledger (default true). The API process does; a worker's
   * own metrics port does not, so that summing over processes never counts an entry twice.
   */
  followLedger?: boolean;
  /** The BullMQ prefix, as a label (not `prefix`: Fastify reads that option as a route prefix). */
  queuePrefix: string;
  /** The delivery counters' hash (src/queue/delivery-store.ts); served where the ledger is followed. */
  deliveryStatsKey?: string;
}

/**
 * When the oldest job now waiting in `queue` was added (ms), if any: the head of the wait list, or
 * the first and last prioritized jobs (ordered by priority, so the oldest low one is at the end).
 */
async function oldestWaitingAt(queue: Queue): Promise<number | undefined> {
  const [waiting, firstPrioritized, lastPrioritized] = await Promise.all([
    queue.getJobs(['wait'], 0, 0, true),
    queue.getJobs(['prioritized'], 0, 0, true),
    queue.getJobs(['prioritized'], 0, 0, false),
  ]);
  const times = [...waiting, ...firstPrioritized, ...lastPrioritized]
    .map((job) => job?.timestamp)
    .filter((t): t is number => typeof t === 'number');
  return times.length > 0 ? Math.min(...times) : undefined;
}

/** `GET /metrics`: smsq's registry plus BullMQ's job counts of every smsq queue, in Prometheus text. */
export const metricsRoutes: FastifyPluginCallback<MetricsRouteOptions> = (app, opts, done) => {
  const follower = new LedgerFollower(opts.redis, opts.ledgerKey, opts.metrics);
  // The failover counts are totals in Redis (every process adds to them): the counter takes the increase.
  const failoversSeen = new Map<string, number>();

  async function circuitsFromRedis(): Promise<void> {
    const { circuitKey, failoversKey } = opts;
    if (circuitKey) {
      const states = await Promise.all(opts.providers.map((p) => opts.redis.hget(circuitKey(p), 'state')));
      opts.providers.forEach((provider, i) =>
        opts.metrics.circuitOpen.set({ provider }, states[i] === 'open' || states[i] === 'half-open' ? 1 : 0),
      );
    }
    // Like the ledger counters, reported only where the ledger is followed (the API), never summed twice.
    if (failoversKey && opts.followLedger !== false) {
      for (const [field, value] of Object.entries(await opts.redis.hgetall(failoversKey))) {
        const [from = '', to = '', reason = ''] = field.split('|');
        const increase = Number(value) - (failoversSeen.get(field) ?? 0);
        if (increase > 0) opts.metrics.failovers.inc({ from, to, reason }, increase);
        failoversSeen.set(field, Number(value));
      }
    }
  }
  const log = app.log.child({ module: 'metrics' });

  async function fromRedis(): Promise<string> {
    await opts.ready();
    if (opts.followLedger !== false) await follower.catchUp();
    const paused = await Promise.all(opts.providers.map((p) => opts.redis.exists(opts.pausedKey(p))));
    opts.providers.forEach((provider, i) => opts.metrics.providerPaused.set({ provider }, paused[i] ? 1 : 0));
    await circuitsFromRedis();
    const queues = opts.queues();
    const oldest = await Promise.all(queues.map(oldestWaitingAt));
    queues.forEach((q, i) =>
      opts.metrics.queueOldestWaiting.set(
        { queue: q.name },
        oldest[i] === undefined ? 0 : Math.max(0, (Date.now() - oldest[i]) / 1000),
      ),
    );
    const texts = await Promise.all(
      queues.map((q) => q.exportPrometheusMetrics({ prefix: opts.queuePrefix })),
    );
    if (opts.followLedger !== false && opts.deliveryStatsKey)
      texts.push(deliveryMetricsText(await opts.redis.hgetall(opts.deliveryStatsKey)));
    return mergePrometheusTexts(texts);
  }

  app.get('/metrics', { schema: { hide: true } }, async (_request, reply) => {
    let queues = '';
    try {
      queues = await withDeadline(fromRedis(), 3_000);
      opts.metrics.redisUp.set(1);
    } catch (err) {
      opts.metrics.redisUp.set(0);
      log.warn({ err }, 'Metrics scrape could not reach Redis; serving the last known values');
    }
    const own = await opts.metrics.registry.metrics();
    return reply.type(opts.metrics.registry.contentType).send(`${own}${queues}`);
  });
  done();
};
