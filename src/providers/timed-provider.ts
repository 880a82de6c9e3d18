import { performance } from 'node:perf_hooks';
import { isDeliveryError } from '../errors.js';
import type { ProviderId } from '../message/types.js';
import type { SmsProvider } from './types.js';

/** Receives one provider request's duration; `outcome` is `ok` or the error's class (`transient`, …). */
export type ProviderRequestObserver = (o: { provider: ProviderId; outcome: string; seconds: number }) => void;

/**
 * A provider whose `send` calls are timed (one observation per provider request). Everything else
 * is delegated unchanged, so the batch processor sees the same provider and the same errors.
 */
export function createTimedProvider(provider: SmsProvider, observe: ProviderRequestObserver): SmsProvider {
  return {
    id: provider.id,
    limits: provider.limits,
    async send(batch, opts) {
      const started = performance.now();
      let outcome = 'ok';
      try {
        return await provider.send(batch, opts);
      } catch (err) {
        outcome = isDeliveryError(err) ? err.kind : 'error';
        throw err;
      } finally {
        observe({ provider: provider.id, outcome, seconds: (performance.now() - started) / 1_000 });
      }
    },
    ...(provider.lookup ? { lookup: provider.lookup.bind(provider) } : {}),
    ...(provider.settleMs !== undefined ? { settleMs: provider.settleMs } : {}),
    probe: (opts) => provider.probe(opts),
    close: () => provider.close(),
  };
}

/** Every provider of a registry map, timed. */
export function timeProviders(
  providers: ReadonlyMap<ProviderId, SmsProvider>,
  observe: ProviderRequestObserver,
): Map<ProviderId, SmsProvider> {
  return new Map([...providers].map(([id, p]) => [id, createTimedProvider(p, observe)] as const));
}
