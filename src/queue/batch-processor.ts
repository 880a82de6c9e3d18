import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { AmbiguousError, isDeliveryError, type DeliveryError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { Batch, BatchReceipt } from '../message/types.js';
import type { SmsProvider } from '../providers/types.js';
import { isFinalBatchState, type BatchState } from './batch-state.js';
import type { BatchJobData, BatchJobResult } from './jobs.js';
import { ledgerFields } from './ledger.js';
import type { ProviderControl } from './provider-control.js';
import type { BatchRecord, RecordStore } from './records.js';

export interface BatchProcessorDeps {
  store: RecordStore;
  provider: SmsProvider;
  control: ProviderControl;
  /** `report`: an ambiguous send without a lookup is recorded `unknown`; `resend`: sent again. */
  ambiguous: 'report' | 'resend';
  logger: Logger;
  /** The worker running this processor (a 429 rate-limits its whole queue). */
  worker: () => Worker;
  /** Send-window check: the time (ms) to hold the batch until, or undefined to send now. */
  holdUntil?: (record: BatchRecord, now: number) => Promise<number | undefined> | number | undefined;
  now?: () => number;
}

const NEVER_ABORTED = new AbortController().signal;
/** Delay before a batch kept for a paused provider is looked at again (it then waits in the paused queue). */
const ACCOUNT_PAUSE_RECHECK_MS = 1_000;

/**
 * Processes one batch job: exactly one provider request per attempt, its state written before the
 * call, and one queue decision per error class (the "never twice, never lost" table in DESIGN.md).
 */
export function createBatchProcessor(deps: BatchProcessorDeps) {
  const { store, provider } = deps;
  const now = deps.now ?? Date.now;
  const baseLog = deps.logger.child({ module: 'batch', provider: provider.id });

  const done = (batch: Batch, state: BatchState): BatchJobResult => ({ batchId: batch.id, state });

  async function recordSent(batch: Batch, receipt: BatchReceipt): Promise<BatchJobResult> {
    const moved = await store.transition(batch, ['sending'], 'sent', {
      receipt,
      ledger: ledgerFields(batch, 'sent', receipt),
    });
    return done(batch, moved.ok ? 'sent' : (moved.current ?? 'sent'));
  }

  async function recordUnknown(batch: Batch, error: string): Promise<void> {
    await store.transition(batch, ['sending'], 'unknown', { error, ledger: ledgerFields(batch, 'unknown') });
  }

  /**
   * A batch found in `sending` at the start of an attempt: the last attempt died or was ambiguous.
   * Returns a result when it is settled, or undefined when it is safe to send (state back to planned).
   */
  async function reconcile(
    batch: Batch,
    finalAttempt: boolean,
    signal: AbortSignal,
    log: Logger,
  ): Promise<BatchJobResult | undefined> {
    if (provider.lookup) {
      let receipt: BatchReceipt | undefined;
      try {
        receipt = await provider.lookup(batch, { signal, sendingSince: 0 });
      } catch (err) {
        if (!finalAttempt) throw err;
        log.error({ err }, 'Lookup of an ambiguous batch failed on the last attempt; recorded unknown');
        await recordUnknown(batch, 'ambiguous send; lookup failed');
        throw new UnrecoverableError('ambiguous send; lookup failed');
      }
      if (receipt) {
        log.info({ tag: batch.tag }, 'Ambiguous batch found at the provider by its tag; recorded sent');
        return recordSent(batch, receipt);
      }
      log.warn({ tag: batch.tag }, 'Ambiguous batch not found at the provider; sending it');
      await store.transition(batch, ['sending'], 'planned');
      return undefined;
    }
    if (deps.ambiguous === 'resend') {
      log.warn('Batch may have reached the provider; sending again (SMSQ_AMBIGUOUS=resend)');
      await store.transition(batch, ['sending'], 'planned');
      return undefined;
    }
    log.error('Batch may have reached the provider and cannot be checked; recorded unknown, not resent');
    await recordUnknown(batch, 'ambiguous send; the provider has no lookup');
    return done(batch, 'unknown');
  }

  async function fail(
    err: DeliveryError,
    job: Job<BatchJobData>,
    token: string | undefined,
    batch: Batch,
    finalAttempt: boolean,
    signal: AbortSignal,
    log: Logger,
  ): Promise<BatchJobResult> {
    const error = `${err.code}: ${err.message}`;
    switch (err.kind) {
      case 'transient':
        if (finalAttempt) {
          await store.transition(batch, ['sending'], 'failed', { error });
          log.error({ err }, 'Batch failed: retries exhausted');
          throw new UnrecoverableError(error);
        }
        await store.transition(batch, ['sending'], 'planned', { error });
        log.warn({ err, attempt: job.attemptsMade + 1 }, 'Provider did not act; retrying with backoff');
        throw err;
      case 'rate-limited':
        // A 429 uses no attempt: the whole queue waits, then the job runs again.
        await store.transition(batch, ['sending'], 'planned', { error });
        log.warn({ retryAfterMs: err.retryAfterMs }, 'Provider rate limit; waiting');
        await deps.worker().rateLimit(err.retryAfterMs);
        throw Worker.RateLimitError();
      case 'permanent':
        await store.transition(batch, ['sending'], 'rejected', {
          error,
          ledger: ledgerFields(batch, 'rejected'),
        });
        log.error({ err }, 'Provider rejected the batch; not retried');
        throw new UnrecoverableError(error);
      case 'account':
        await store.transition(batch, ['sending'], 'planned', { error });
        await deps.control.pause(provider.id, { code: err.code, message: err.message });
        await job.moveToDelayed(now() + ACCOUNT_PAUSE_RECHECK_MS, token);
        throw new DelayedError();
      case 'ambiguous':
        if (provider.lookup) {
          if (finalAttempt) {
            // Last chance: found by tag → sent; not found yet → it may still appear, so unknown, never resent.
            const receipt = await provider.lookup(batch, { signal, sendingSince: 0 }).catch(() => undefined);
            if (receipt) return recordSent(batch, receipt);
            await recordUnknown(batch, error);
            throw new UnrecoverableError(error);
          }
          // Stays `sending`: the next attempt looks the batch up by its tag before sending.
          log.warn({ err }, 'Send outcome unknown; will look the batch up before any resend');
          throw err;
        }
        if (deps.ambiguous === 'resend' && !finalAttempt) {
          await store.transition(batch, ['sending'], 'planned', { error });
          log.warn({ err }, 'Send outcome unknown; resending (SMSQ_AMBIGUOUS=resend)');
          throw err;
        }
        await recordUnknown(batch, error);
        log.error({ err }, 'Send outcome unknown and cannot be checked; recorded unknown, not resent');
        throw new UnrecoverableError(error);
    }
  }

  // Three declared parameters, none defaulted: BullMQ passes an AbortSignal (and can cancel the
  // job on shutdown) only when the processor's `length` is at least 3.
  return async function processBatchJob(
    job: Job<BatchJobData>,
    token: string | undefined,
    jobSignal: AbortSignal | undefined,
  ): Promise<BatchJobResult> {
    const signal = jobSignal ?? NEVER_ABORTED;
    const record = await store.getBatch(job.data.batchId);
    if (!record) throw new UnrecoverableError(`Batch ${job.data.batchId} has no record`);
    const { batch } = record;
    const log = baseLog.child({ jobId: job.id, batchId: batch.id, requestId: batch.requestId });
    // A settled batch is never sent again: a re-run returns what was recorded.
    if (isFinalBatchState(record.state)) return done(batch, record.state);
    const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);

    if (record.state === 'planned' && record.expiresAt && Date.parse(record.expiresAt) <= now()) {
      const moved = await store.transition(batch, ['planned'], 'expired', {
        error: 'not sent before expiresAt',
      });
      log.warn('Batch expired before it could be sent');
      return done(batch, moved.ok ? 'expired' : (moved.current ?? 'expired'));
    }
    if (record.state === 'planned' && deps.holdUntil) {
      const until = await deps.holdUntil(record, now());
      if (until !== undefined && until > now()) {
        // Outside its send window: wait for the next opening, using no attempt.
        await job.moveToDelayed(until, token);
        throw new DelayedError();
      }
    }
    if (record.state === 'sending') {
      const settled = await reconcile(batch, finalAttempt, signal, log);
      if (settled) return settled;
    }

    const moved = await store.transition(batch, ['planned'], 'sending', { countAttempt: true });
    if (!moved.ok) return done(batch, moved.current ?? 'failed');
    try {
      const receipt = await provider.send(batch, { signal });
      return await recordSent(batch, receipt);
    } catch (thrown) {
      const err = isDeliveryError(thrown)
        ? thrown
        : new AmbiguousError('Unexpected error while sending', { cause: thrown, code: 'SMSQ_UNEXPECTED' });
      return fail(err, job, token, batch, finalAttempt, signal, log);
    }
  };
}
