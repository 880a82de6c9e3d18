/** Retries of a failed webhook delivery: never more than hourly, never past a day. */
export const WEBHOOK_RETRY_CAP_MS = 3_600_000;
export const WEBHOOK_RETRY_FOR_MS = 24 * 3_600_000;

/** The delay before retry number `attempt` (1 = the first retry), before jitter: `firstMs` doubling, capped hourly. */
export function webhookRetryBaseMs(attempt: number, firstMs: number): number {
  return Math.min(WEBHOOK_RETRY_CAP_MS, firstMs * 2 ** Math.min(Math.max(attempt, 1) - 1, 30));
}

/**
 * The delay actually waited: the base ±20 % (receivers coming back are not hit by every pending
 * retry in the same second), still at most hourly.
 */
export function webhookRetryDelayMs(
  attempt: number,
  firstMs: number,
  random: () => number = Math.random,
): number {
  const base = webhookRetryBaseMs(attempt, firstMs);
  return Math.min(WEBHOOK_RETRY_CAP_MS, Math.round(base * (0.8 + 0.4 * random())));
}

/**
 * True when an event first queued `elapsedMs` ago should be retried once more: the next attempt
 * (at its latest, jitter included) still falls within `retryForMs` (24 h) of its first one.
 */
export function shouldRetryWebhook(
  attempt: number,
  elapsedMs: number,
  firstMs: number,
  retryForMs = WEBHOOK_RETRY_FOR_MS,
): boolean {
  const latest = Math.min(WEBHOOK_RETRY_CAP_MS, webhookRetryBaseMs(attempt, firstMs) * 1.2);
  return elapsedMs + latest <= retryForMs;
}
