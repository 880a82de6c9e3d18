/**
 * When each request reached a loopback provider fake: `at[i]` is the `performance.now()` at which
 * `fake.requests[i]` was recorded (the fake reads the whole request first), on this process's clock.
 */
import type { FakeDescom } from '../../test/helpers/fake-descom.js';

export interface Arrivals {
  at: number[];
  stop(): void;
}

export function stampArrivals(fake: FakeDescom): Arrivals {
  const at: number[] = [];
  let stopped = false;
  void (async () => {
    while (!stopped) {
      // The fake resolves this as it records the request: the stamp is taken a microtask later.
      await fake.waitForRequests(at.length + 1);
      const now = performance.now();
      while (at.length < fake.requests.length) at.push(now);
    }
  })();
  return { at, stop: () => void (stopped = true) };
}

/** Resolves once `count` requests arrived; rejects after `timeoutMs`. */
export async function waitForArrivals(fake: FakeDescom, count: number, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`${count} provider requests not received within ${timeoutMs} ms`)),
      timeoutMs,
    );
  });
  try {
    await Promise.race([fake.waitForRequests(count), timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** The most arrivals in any window of `windowMs` (sliding: a window starts at every arrival). */
export function busiestWindow(times: readonly number[], windowMs = 1000): number {
  let best = 0;
  let first = 0;
  for (let last = 0; last < times.length; last += 1) {
    while (times[last]! - times[first]! >= windowMs) first += 1;
    best = Math.max(best, last - first + 1);
  }
  return best;
}

/** The most arrivals in one of the consecutive windows of `windowMs` from `from` (a fixed-window count). */
export function busiestFixedWindow(times: readonly number[], from: number, windowMs = 1000): number {
  const counts = new Map<number, number>();
  for (const t of times) {
    const slot = Math.floor((t - from) / windowMs);
    counts.set(slot, (counts.get(slot) ?? 0) + 1);
  }
  return Math.max(0, ...counts.values());
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
