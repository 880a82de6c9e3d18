import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import {
  AmbiguousError,
  isDeliveryError,
  RateLimitedError,
  TransientError,
  type DeliveryError,
} from '../errors.js';
import type { Logger } from '../logger.js';
import type { Batch, BatchReceipt } from '../message/types.js';
import { NOTHING_COUNTED, type CallMeter, type SmsProvider } from '../providers/types.js';
import { isFinalBatchState, type BatchState } from './batch-state.js';
import type { BatchJobData, BatchJobResult } from './jobs.js';
import { duplicateLedgerFields, ledgerFields } from './ledger.js';
import type { CircuitBreaker } from './circuit.js';
import type { Failover } from './failover.js';
import type { ProviderControl } from './provider-control.js';
import { persistUntilWritten } from './persist.js';
import type { BatchRecord, RecordStore } from './records.js';

export interface BatchProcessorDeps {
  store: RecordStore;
  provider: SmsProvider;
  control: ProviderControl;
  /** `report`: an ambiguous send without a lookup is recorded `unknown`; `resend`: sent again. */
  ambiguous: 'report' | 'resend';
  /** Provider calls a batch may make before it ends `failed` (SMSQ_ATTEMPTS). */
  attempts: number;
  /** Total deadline of one provider call, in ms (SMSQ_PROVIDER_TIMEOUT_MS). */
  providerTimeoutMs: number;
  logger: Logger;
  /** Send-window check: the time (ms) to hold the batch until, or undefined to send now. */
  holdUntil?: (record: BatchRecord, now: number) => Promise<number | undefined> | number | undefined;
  /**
   * Waits until the `sending` write is durable (WAITAOF / WAIT, see src/queue/durability.ts);
   * throws when Redis does not acknowledge it in time (the call is then not made).
   */
  durable?: () => Promise<void>;
  /** The provider account's allowance: every send takes its call from it (see SmsProvider). Default: none. */
  meter?: CallMeter;
  now?: () => number;
  /** Counts each call's outcome in the provider's circuit (circuit.ts). */
  circuit?: CircuitBreaker;
  /** Moves a routed planned batch off an unavailable provider (failover.ts). */
  failover?: Failover;
}

/** What a job carries when its run got a receipt it could not write (so a takeover records it). */
export interface BatchJobReceiptData extends BatchJobData {
  receipt?: BatchReceipt;
}

const NEVER_ABORTED = new AbortController().signal;
/** Delay before a batch kept for a paused provider is looked at again (it then waits in the paused queue). */
const ACCOUNT_PAUSE_RECHECK_MS = 1_000;
/**
 * Added to the provider deadline before a call is taken as over: a call that began at `callAt`
 * may still be in flight until `callAt + deadline + margin` (timers fire late, clocks differ).
 */
export const IN_FLIGHT_MARGIN_MS = 2_000;
/** Lookups of an ambiguous batch back off from 1 s, doubling, to at most this. */
const LOOKUP_BACKOFF_MAX_MS = 30_000;
/** Consecutive failed lookups after which, once the settle window is over, the batch ends `unknown`. */
export const MAX_LOOKUP_FAILURES = 5;
/** A batch another run holds right now is looked at again after this. */
const BUSY_RECHECK_MS = 250;

/**
 * Processes one batch job: at most one provider request per run, its state written (and made
 * durable) before the call, and one queue decision per outcome (the "never twice, never lost"
 * table in the README). A run owns the batch from its claim: only the owner settles it, and a
 * receipt is recorded whoever holds the batch, since it proves the batch was sent.
 */
export function createBatchProcessor(deps: BatchProcessorDeps) {
  const { store, provider } = deps;
  const now = deps.now ?? Date.now;
  const baseLog = deps.logger.child({ module: 'batch', provider: provider.id });
  const inFlightMs = deps.providerTimeoutMs + IN_FLIGHT_MARGIN_MS;

  const done = (batch: Batch, state: BatchState): BatchJobResult => ({ batchId: batch.id, state });

  /** Counts a call in the circuit; a Redis hiccup here must not change what happens to the batch. */
  async function countCall(failed: boolean, log: Logger): Promise<void> {
    await deps.circuit
      ?.record(provider.id, failed)
      .catch((err: unknown) => log.warn({ err }, 'Could not count the call in the circuit'));
  }

  /** Fails a routed planned batch over when its provider is unavailable; true when it moved (or had). */
  async function failedOver(job: Job<BatchJobReceiptData>, batchId: string): Promise<boolean> {
    if (!deps.failover) return false;
    const record = await store.getBatch(batchId);
    if (!record?.route && record?.state !== 'moved') return false;
    return (await deps.failover.moveIfNeeded(record, job)).status === 'moved';
  }

  /** Moves the job to delayed until `at`, using no attempt. */
  async function waitUntil(job: Job, token: string | undefined, at: number): Promise<never> {
    await job.moveToDelayed(Math.max(at, now() + 1), token);
    throw new DelayedError();
  }

  /**
   * Records a receipt, retrying the write until Redis takes it: a receipt is proof the batch was
   * sent and is never turned into "ambiguous" by our own failure (OOM, READONLY, connection lost).
   */
  async function recordReceipt(
    job: Job<BatchJobReceiptData>,
    batch: Batch,
    receipt: BatchReceipt,
    owner: string,
    log: Logger,
  ): Promise<BatchJobResult> {
    const recorded = await persistUntilWritten(
      () =>
        store.recordReceipt(batch, receipt, owner, {
          sent: ledgerFields(batch, 'sent', receipt),
          duplicate: duplicateLedgerFields(batch, receipt),
        }),
      {
        log,
        what: 'provider receipt',
        detail: { providerIds: receipt.providerIds.length },
        // Also keep it in the job, so a run that takes the job over can record it.
        onFirstFailure: () => job.updateData({ ...job.data, receipt }),
      },
    );
    switch (recorded.outcome) {
      case 'sent':
        break;
      case 'taken-over':
        log.warn('Receipt recorded for a batch another run had taken over; the batch is sent');
        break;
      case 'late':
        log.warn(
          { previous: recorded.previous },
          'Late receipt: the batch was sent after all; recorded sent',
        );
        break;
      case 'same':
        log.info('Receipt already recorded for this send');
        break;
      case 'duplicate':
        log.error(
          { providerIds: receipt.providerIds.length, accepted: receipt.accepted.length },
          'Duplicate send: the provider accepted a batch that was already sent; recorded in the ledger',
        );
        break;
    }
    return done(batch, 'sent');
  }

  /** A state change after a provider call: it carries what we learnt, so it is retried until written. */
  function settle(
    batch: Batch,
    from: BatchState,
    to: BatchState,
    owner: string,
    log: Logger,
    opts: { error?: string; ledger?: Record<string, string>; callEnded?: boolean } = {},
  ) {
    return persistUntilWritten(() => store.transition(batch, [from], to, { ...opts, ifOwner: owner }), {
      log,
      what: `batch state ${to}`,
    });
  }

  /**
   * A batch found in `sending`: a call may have reached the provider. Waits while that call may
   * still be in flight, takes the batch over (fencing the previous owner out), then looks it up
   * over the provider's settle window. Returns a result when settled, or undefined once the batch
   * is back to `planned` (never accepted: safe to send).
   */
  async function reconcile(
    job: Job<BatchJobReceiptData>,
    token: string | undefined,
    record: BatchRecord,
    owner: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<BatchJobResult | undefined> {
    const { batch } = record;
    if (record.callAt === undefined) {
      // Claimed, but no call began (the run stopped before it): nothing can be at the provider,
      // and the previous owner can no longer begin one (its beginCall checks the owner and lock).
      const back = await store.transition(batch, ['sending'], 'planned', { ifOwner: 'no-call' });
      if (back.ok) return undefined;
      return waitUntil(job, token, now() + BUSY_RECHECK_MS);
    }
    const redisNow = await store.redisTimeMs();
    const callOverAt = record.callAt + inFlightMs;
    if (!record.callEnded && redisNow < callOverAt) {
      // The owner's call may still be in flight: never look up, resend or settle under it.
      log.info(
        { waitMs: callOverAt - redisNow },
        'Batch has a provider call in flight; waiting for its deadline',
      );
      return waitUntil(job, token, now() + (callOverAt - redisNow));
    }
    const lock = jobLock(job, token);
    if (lock && !(await store.holdsLock(lock))) {
      // Frozen past our lock and resumed: the job is another run's now, so are its lookups. (Not
      // what keeps us from sending: beginCall checks the lock atomically before any call.)
      log.warn('Lost the job lock before reconciling; leaving the batch to the run that holds it');
      return done(batch, 'sending');
    }
    if (record.owner !== owner) {
      const took = await store.transition(batch, ['sending'], 'sending', {
        ifOwner: record.owner ?? '',
        setOwner: owner,
      });
      if (!took.ok) return waitUntil(job, token, now() + BUSY_RECHECK_MS);
    }

    if (!provider.lookup) {
      if (deps.ambiguous === 'resend' && record.attempts < deps.attempts) {
        log.warn('Batch may have reached the provider; sending again (SMSQ_AMBIGUOUS=resend)');
        await settle(batch, 'sending', 'planned', owner, log);
        return undefined;
      }
      log.error('Batch may have reached the provider and cannot be checked; recorded unknown, not resent');
      await settle(batch, 'sending', 'unknown', owner, log, {
        error: record.error ?? 'ambiguous send; the provider has no lookup',
        ledger: ledgerFields(batch, 'unknown'),
      });
      return done(batch, 'unknown');
    }

    const settleEndsAt = callOverAt + (provider.settleMs ?? 0);
    let found: BatchReceipt | undefined;
    try {
      found = await provider.lookup(batch, { signal, sendingSince: record.callAt });
    } catch (thrown) {
      if (thrown instanceof RateLimitedError) {
        // The provider asked us to slow down: wait, without counting a failure.
        return waitUntil(job, token, now() + thrown.retryAfterMs);
      }
      const { lookups, failures } = await store.countLookup(batch, true);
      if (failures >= MAX_LOOKUP_FAILURES && redisNow >= settleEndsAt) {
        log.error(
          { err: thrown, failures },
          'Lookups of an ambiguous batch keep failing; recorded unknown, not resent',
        );
        await settle(batch, 'sending', 'unknown', owner, log, {
          error: 'ambiguous send; lookups failed',
          ledger: ledgerFields(batch, 'unknown'),
        });
        return done(batch, 'unknown');
      }
      log.warn({ err: thrown, failures }, 'Lookup of an ambiguous batch failed; will look again');
      return waitUntil(job, token, now() + lookupBackoffMs(lookups));
    }
    if (found) {
      log.info({ tag: batch.tag }, 'Ambiguous batch found at the provider; recorded sent');
      return recordReceipt(job, batch, found, owner, log);
    }
    const { lookups } = await store.countLookup(batch, false);
    if (redisNow < settleEndsAt) {
      // Not there yet: the provider may still be creating or holding it. Look again later.
      const next = Math.min(settleEndsAt - redisNow, lookupBackoffMs(lookups));
      return waitUntil(job, token, now() + next);
    }
    if (record.attempts >= deps.attempts) {
      log.error('Batch not found at the provider after its settle window; attempts exhausted');
      await settle(batch, 'sending', 'failed', owner, log, {
        error: 'not accepted by the provider; attempts exhausted',
      });
      return done(batch, 'failed');
    }
    log.warn(
      { tag: batch.tag },
      'Ambiguous batch not found at the provider after its settle window; sending it',
    );
    await settle(batch, 'sending', 'planned', owner, log);
    return undefined;
  }

  /** The queue decision for a provider error (the error table); the call has been made. */
  async function fail(
    err: DeliveryError,
    job: Job<BatchJobReceiptData>,
    token: string | undefined,
    batch: Batch,
    owner: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<BatchJobResult> {
    const error = `${err.code}: ${err.message}`;
    const finalAttempt = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
    const moved = async (to: BatchState, opts: { ledger?: Record<string, string> } = {}) => {
      const result = await settle(batch, 'sending', to, owner, log, { error, ...opts });
      // Refused: another run took the batch over while we called; it decides now.
      if (!result.ok)
        log.warn({ current: result.current }, 'Batch was taken over during the call; leaving it');
      return result.ok;
    };
    switch (err.kind) {
      case 'transient':
        await countCall(true, log);
        if (finalAttempt) {
          if (await moved('failed')) log.error({ err }, 'Batch failed: retries exhausted');
          throw new UnrecoverableError(error);
        }
        if (!(await moved('planned'))) return done(batch, 'sending');
        if (await failedOver(job, batch.id)) return done(batch, 'moved');
        log.warn({ err, attempt: job.attemptsMade + 1 }, 'Provider did not act; retrying with backoff');
        throw err;
      case 'rate-limited':
        // A 429 uses no attempt: the provider's queues (both lanes) wait, then the job runs again.
        if (!(await moved('planned'))) return done(batch, 'sending');
        log.warn({ retryAfterMs: err.retryAfterMs }, 'Provider rate limit; waiting');
        await deps.control.rateLimit(provider.id, err.retryAfterMs);
        throw Worker.RateLimitError();
      case 'permanent':
        // The provider answered: it is up, whatever it thought of this batch.
        await countCall(false, log);
        if (await moved('rejected', { ledger: ledgerFields(batch, 'rejected') }))
          log.error({ err }, 'Provider rejected the batch; not retried');
        throw new UnrecoverableError(error);
      case 'account':
        if (!(await moved('planned'))) return done(batch, 'sending');
        await deps.control.pause(provider.id, {
          code: err.code,
          message: err.message,
          neededCredits: batch.estimatedCredits,
          ...(err.failAfterRepeats !== undefined ? { failAfterRepeats: err.failAfterRepeats } : {}),
        });
        if (await failedOver(job, batch.id)) return done(batch, 'moved');
        return waitUntil(job, token, now() + ACCOUNT_PAUSE_RECHECK_MS);
      case 'ambiguous': {
        await countCall(true, log);
        // Stays `sending`, owned by this run, our call over: reconcile it now (look it up over the
        // settle window, or record it unknown). Only a lookup that finds nothing once the window
        // is over sends it again, with an attempt used.
        const kept = await settle(batch, 'sending', 'sending', owner, log, { error, callEnded: true });
        if (!kept.ok) {
          log.warn({ current: kept.current }, 'Batch was taken over during the call; leaving it');
          return done(batch, 'sending');
        }
        log.warn({ err }, 'Send outcome unknown; the batch will be reconciled before any resend');
        const record = await store.getBatch(batch.id);
        if (!record) throw new UnrecoverableError(`Batch ${batch.id} has no record`);
        const settled = await reconcile(job, token, record, owner, signal, log);
        if (settled) return settled;
        throw err;
      }
    }
  }

  /** Sends a `planned` batch: every check (cancel, expiry, window, ownership) right before the call. */
  async function send(
    job: Job<BatchJobReceiptData>,
    token: string | undefined,
    record: BatchRecord,
    owner: string,
    signal: AbortSignal,
    log: Logger,
  ): Promise<BatchJobResult> {
    const { batch } = record;
    // Every send re-checks expiry and the window: the first, a retry, a resend after reconciliation.
    if (record.expiresAt && Date.parse(record.expiresAt) <= now()) {
      const moved = await store.transition(batch, ['planned'], 'expired', {
        error: 'not sent before expiresAt',
      });
      log.warn('Batch expired before it could be sent');
      return done(batch, moved.ok ? 'expired' : (moved.current ?? 'expired'));
    }
    if (deps.holdUntil) {
      const until = await deps.holdUntil(record, now());
      // Outside its send window: wait for the next opening, using no attempt.
      if (until !== undefined && until > now()) return waitUntil(job, token, until);
    }
    // A routed batch whose provider is paused or whose circuit is open goes to the next one instead.
    if (record.route && (await failedOver(job, batch.id))) return done(batch, 'moved');
    const claimed = await store.claim(batch, owner);
    if (claimed.status === 'cancelled') {
      log.info('Request cancelled; batch not sent');
      return done(batch, 'failed');
    }
    if (claimed.status === 'conflict') {
      if (claimed.current && isFinalBatchState(claimed.current)) return done(batch, claimed.current);
      // Failed over meanwhile (by a scan): its successors send; this job ends here.
      if (claimed.current === 'moved' && (await failedOver(job, batch.id))) return done(batch, 'moved');
      return waitUntil(job, token, now() + BUSY_RECHECK_MS);
    }
    try {
      await deps.durable?.();
    } catch (err) {
      // Not durable: a crash could forget that we were about to send, so we do not send.
      await store.transition(batch, ['sending'], 'planned', { ifOwner: owner });
      throw new TransientError('The sending state was not acknowledged as durable; not sent', {
        cause: err,
        code: 'SMSQ_REDIS_NOT_DURABLE',
      });
    }
    // The call is taken from the provider's allowance last, right before it is marked begun and
    // made, so the provider sees the calls spaced as the meter granted them (little else runs in
    // between). A high-priority request's send goes before every other waiting call. The batch
    // waits in `sending` with no call begun: a cancel still fails it, and `beginCall` below still
    // checks the job lock, so a run frozen here never calls after another took over.
    let grant = NOTHING_COUNTED;
    try {
      if (deps.meter) grant = await deps.meter(signal, job.data.priority === 'high' ? 'urgent' : 'normal');
    } catch (err) {
      await store.transition(batch, ['sending'], 'planned', { ifOwner: owner });
      throw new TransientError('Waiting for the provider allowance failed; not sent', {
        cause: err,
        code: 'SMSQ_ALLOWANCE_WAIT',
      });
    }
    const lock = jobLock(job, token);
    const begun = await store.beginCall(batch, owner, lock);
    if (begun.status === 'cancelled') {
      log.info('Request cancelled; batch not sent');
      return done(batch, 'failed');
    }
    if (begun.status === 'lost') {
      // Settled meanwhile (a late receipt of an earlier call): nothing to send, say what it is.
      const settled = begun.reason as BatchState;
      if (isFinalBatchState(settled)) return done(batch, settled);
      // Frozen past our lock (or taken over): another run has the job now; we must not call.
      log.warn({ reason: begun.reason }, 'Lost the batch before the provider call; not sending');
      return done(batch, 'sending');
    }

    let receipt: BatchReceipt;
    try {
      receipt = await provider.send(batch, {
        signal,
        onWritten: grant.written,
        onLateReceipt: (late) => {
          recordReceipt(job, batch, late, owner, log).catch((err: unknown) =>
            log.error({ err }, 'Could not record a late receipt'),
          );
        },
      });
    } catch (thrown) {
      const err = isDeliveryError(thrown)
        ? thrown
        : new AmbiguousError('Unexpected error while sending', { cause: thrown, code: 'SMSQ_UNEXPECTED' });
      return fail(err, job, token, batch, owner, signal, log);
    }
    await countCall(false, log);
    // Outside the try: a failure to record is ours, never the provider's, and never "ambiguous".
    return recordReceipt(job, batch, receipt, owner, log);
  }

  // Three declared parameters, none defaulted: BullMQ passes an AbortSignal (and can cancel the
  // job on shutdown) only when the processor's `length` is at least 3.
  return async function processBatchJob(
    job: Job<BatchJobReceiptData>,
    token: string | undefined,
    jobSignal: AbortSignal | undefined,
  ): Promise<BatchJobResult> {
    const signal = jobSignal ?? NEVER_ABORTED;
    const record = await store.getBatch(job.data.batchId);
    if (!record) throw new UnrecoverableError(`Batch ${job.data.batchId} has no record`);
    const { batch } = record;
    const log = baseLog.child({ jobId: job.id, batchId: batch.id, requestId: batch.requestId });
    // This run's identity: the job's lock token changes with every run, so a frozen run is fenced out.
    const owner = `${token ?? 'no-token'}:${job.attemptsMade}`;

    // A previous run got a receipt but could not write it: it is proof, record it first.
    if (job.data.receipt) return recordReceipt(job, batch, job.data.receipt, owner, log);
    // A settled batch is never sent again: a re-run returns what was recorded.
    if (isFinalBatchState(record.state)) return done(batch, record.state);
    // Failed over: its successors (under another provider) send it; this job ends without sending.
    if (record.state === 'moved') {
      await failedOver(job, batch.id);
      return done(batch, 'moved');
    }

    let current = record;
    if (record.state === 'sending') {
      const settled = await reconcile(job, token, record, owner, signal, log);
      if (settled) return settled;
      const reread = await store.getBatch(batch.id);
      if (!reread) throw new UnrecoverableError(`Batch ${batch.id} has no record`);
      if (isFinalBatchState(reread.state)) return done(batch, reread.state);
      current = reread;
    }
    return send(job, token, current, owner, signal, log);
  };
}

/** The job's BullMQ lock (its key and this run's token), when the run has one. */
function jobLock(job: Job, token: string | undefined): { key: string; token: string } | undefined {
  return token ? { key: `${job.queueQualifiedName}:${job.id}:lock`, token } : undefined;
}

/** 1 s, 2 s, 4 s … up to LOOKUP_BACKOFF_MAX_MS, by the number of lookups made so far. */
function lookupBackoffMs(lookups: number): number {
  return Math.min(LOOKUP_BACKOFF_MAX_MS, 1_000 * 2 ** Math.max(0, lookups - 1));
}
