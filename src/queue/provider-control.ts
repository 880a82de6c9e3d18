import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from '../logger.js';
import type { ProviderId } from '../message/types.js';
import type { SmsProvider } from '../providers/types.js';
import type { SmsqKeys } from './names.js';

/**
 * Pauses a provider's queue when its account cannot send (no credit, bad credentials), keeps its
 * jobs, and resumes it when a probe succeeds or an operator says so. The pause flag lives in
 * Redis, so every worker process probes it and a restart keeps it.
 */
export class ProviderControl {
  private timer?: NodeJS.Timeout;
  private probing = false;

  constructor(
    private readonly deps: {
      redis: Redis;
      keys: SmsqKeys;
      queues: ReadonlyMap<ProviderId, Queue>;
      providers: ReadonlyMap<ProviderId, SmsProvider>;
      probeIntervalMs: number;
      logger: Logger;
    },
  ) {}

  private get log() {
    return this.deps.logger.child({ module: 'provider-control' });
  }

  async pause(
    provider: ProviderId,
    reason: { code: string; message: string; neededCredits?: number; failAfterRepeats?: number },
  ): Promise<void> {
    await this.deps.redis.set(
      this.deps.keys.paused(provider),
      JSON.stringify({ ...reason, at: new Date().toISOString() }),
    );
    await this.deps.queues.get(provider)?.pause();
    this.log.fatal(
      { provider, code: reason.code },
      `Provider ${provider} paused: ${reason.message}; jobs are kept`,
    );
  }

  async resume(provider: ProviderId, by: 'probe' | 'operator'): Promise<void> {
    await this.deps.redis.del(this.deps.keys.paused(provider));
    await this.deps.queues.get(provider)?.resume();
    this.log.info({ provider, by }, `Provider ${provider} resumed`);
  }

  async pausedReason(
    provider: ProviderId,
  ): Promise<{ code: string; message: string; at: string } | undefined> {
    const raw = await this.deps.redis.get(this.deps.keys.paused(provider));
    return raw ? (JSON.parse(raw) as { code: string; message: string; at: string }) : undefined;
  }

  /** Probes every provider paused for its account; resumes those that can send again. */
  async probePaused(): Promise<void> {
    if (this.probing) return;
    this.probing = true;
    try {
      for (const [id, provider] of this.deps.providers) {
        if (!(await this.pausedReason(id))) continue;
        const ok = await provider.probe({ signal: AbortSignal.timeout(10_000) }).catch(() => false);
        if (ok) await this.resume(id, 'probe');
        else this.log.warn({ provider: id }, `Provider ${id} still cannot send; staying paused`);
      }
    } finally {
      this.probing = false;
    }
  }

  startProbing(): void {
    this.timer = setInterval(() => {
      this.probePaused().catch((err: unknown) => this.log.error({ err }, 'Probe of paused providers failed'));
    }, this.deps.probeIntervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}
