/**
 * How many batches of one provider a worker process keeps in flight. A provider answering in L
 * seconds at an allowance of R calls per second needs R × L calls in flight to use the allowance
 * (Little's law): fewer leave it unused, more only wait at the meter holding job locks. The size
 * follows the observed call latency (a moving average), with a margin, bounded by
 * `SMSQ_MAX_INFLIGHT`.
 */
export interface InflightSizerOptions {
  ratePerSecond: number;
  /** Upper bound (SMSQ_MAX_INFLIGHT). */
  max: number;
  /** Latency assumed before any call was observed, in ms (default 200). */
  initialLatencyMs?: number;
}

/** Weight of the newest observation in the moving average. */
const SMOOTHING = 0.2;
/** In flight beyond R × L: latency varies call to call, and a slot is busy a little before and after. */
const MARGIN = 1.25;

export class InflightSizer {
  private latencyMs: number;

  constructor(private readonly opts: InflightSizerOptions) {
    this.latencyMs = opts.initialLatencyMs ?? 200;
  }

  /** Records one provider call's duration. */
  observe(durationMs: number): void {
    if (!Number.isFinite(durationMs) || durationMs < 0) return;
    this.latencyMs += SMOOTHING * (durationMs - this.latencyMs);
  }

  /** Batches to keep in flight now: ⌈R × L × margin⌉ + 1, between 1 and `max`. */
  get size(): number {
    const needed = Math.ceil((this.opts.ratePerSecond * this.latencyMs * MARGIN) / 1000) + 1;
    return Math.max(1, Math.min(this.opts.max, needed));
  }
}
