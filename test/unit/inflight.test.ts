import { describe, expect, it } from 'vitest';
import { InflightSizer } from '../../src/queue/inflight.js';

describe('in-flight sizing', () => {
  it('keeps allowance × latency in flight, with a margin, as the latency changes', () => {
    const sizer = new InflightSizer({ ratePerSecond: 100, max: 64, initialLatencyMs: 0 });
    expect(sizer.size).toBe(1);
    for (let i = 0; i < 50; i++) sizer.observe(200);
    // 100/s × 0.2 s = 20 in flight, × 1.25 + 1.
    expect(sizer.size).toBe(26);
    for (let i = 0; i < 50; i++) sizer.observe(10);
    expect(sizer.size).toBeLessThanOrEqual(3);
  });

  it('never goes past SMSQ_MAX_INFLIGHT nor below one', () => {
    const sizer = new InflightSizer({ ratePerSecond: 100, max: 64 });
    for (let i = 0; i < 50; i++) sizer.observe(1_000);
    expect(sizer.size).toBe(64);
    sizer.observe(Number.NaN);
    sizer.observe(-5);
    expect(sizer.size).toBe(64);
    expect(new InflightSizer({ ratePerSecond: 1, max: 64, initialLatencyMs: 0 }).size).toBe(1);
  });
});
