/** The circuit breaker's rules, on a real Redis (its state lives there, shared by every process). */
import { describe, expect, it } from 'vitest';
import { CircuitBreaker } from '../../src/queue/circuit.js';
import { captureLogger } from '../helpers/smsq.js';
import { openTestStore } from '../helpers/store.js';
import { eventually } from '../helpers/wait.js';

describe('CircuitBreaker', () => {
  function breaker(failbackMs = 60_000) {
    const t = openTestStore();
    const { logger, lines } = captureLogger('info');
    const opened: string[] = [];
    const circuit = new CircuitBreaker({
      redis: t.redis,
      keys: t.keys,
      failures: 5,
      failbackMs,
      logger,
      onOpen: (p) => opened.push(p),
    });
    return { circuit, opened, lines };
  }

  it('opens at the fifth failure in a row; a success in between starts the count again', async () => {
    const { circuit, opened } = breaker();
    for (const failed of [true, true, true, true, false, true, true, true, true])
      await circuit.record('descom', failed);
    expect((await circuit.availability('descom')).state).toBe('closed');
    await circuit.record('descom', true);
    expect(await circuit.availability('descom')).toEqual({ state: 'open', unavailable: 'circuit-open' });
    await circuit.record('descom', true);
    expect(opened).toEqual(['descom']);
    expect((await circuit.availability('ovh')).state).toBe('closed');
  });

  it('opens when half of the last calls within 60 s failed, though never five in a row', async () => {
    const { circuit } = breaker();
    // Four failures, then alternating: 10 calls with 5 failed, at most 4 in a row.
    const calls = [true, true, true, true, false, false, false, false, false, true];
    for (const failed of calls.slice(0, -1)) await circuit.record('ovh', failed);
    expect((await circuit.availability('ovh')).state).toBe('closed');
    await circuit.record('ovh', true);
    expect((await circuit.availability('ovh')).state).toBe('open');
  });

  it('half-opens on a probe, reopens on a failure, and closes only after the failback period without one', async () => {
    const { circuit, lines } = breaker(1_000);
    for (let i = 0; i < 5; i++) await circuit.record('descom', true);
    await circuit.halfOpen('descom', 'probe');
    expect((await circuit.availability('descom')).state).toBe('half-open');
    await circuit.record('descom', true);
    expect((await circuit.availability('descom')).state).toBe('open');

    await circuit.halfOpen('descom', 'probe');
    const halfOpenedAt = Date.now();
    await new Promise((r) => setTimeout(r, 300));
    expect(await circuit.availability('descom')).toEqual({ state: 'half-open', unavailable: 'circuit-open' });
    // Closed once the failback period (1 s) passed without a failure, not before (timers under
    // load fire late, never early: wait for it rather than sleep a fixed time).
    await eventually(async () => (await circuit.availability('descom')).state === 'closed', {
      timeoutMs: halfOpenedAt + 5_000 - Date.now(),
      intervalMs: 20,
      what: 'descom circuit closed',
    });
    expect(Date.now() - halfOpenedAt).toBeGreaterThanOrEqual(1_000);
    expect(await circuit.availability('descom')).toEqual({ state: 'closed' });
    // One line per switch: opened twice, half-opened twice, closed once; no number in any.
    expect(lines().match(/Circuit of descom (opened|half-open|closed)/g)).toEqual([
      'Circuit of descom opened',
      'Circuit of descom half-open',
      'Circuit of descom opened',
      'Circuit of descom half-open',
      'Circuit of descom closed',
    ]);
  });
});
