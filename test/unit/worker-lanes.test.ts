import { describe, expect, it } from 'vitest';
import { backgroundDuties, workerLanes } from '../../src/queue/workers.js';

describe('the lanes a worker process works (StartWorkersOptions.lanes)', () => {
  it('defaults to both, in LANES order, and keeps that order for any list given', () => {
    expect(workerLanes(undefined)).toEqual(['priority', 'bulk']);
    expect(workerLanes(['bulk', 'priority'])).toEqual(['priority', 'bulk']);
    expect(workerLanes(['priority'])).toEqual(['priority']);
  });

  it('refuses an unknown lane and an empty list, naming the option', () => {
    expect(() => workerLanes(['priority', 'urgent'])).toThrow(
      'lanes: expected one or more of priority, bulk, got urgent',
    );
    expect(() => workerLanes([])).toThrow('lanes: expected one or more of priority, bulk, got none');
  });

  it('leaves the background duties to the processes that work the bulk lane', () => {
    expect(backgroundDuties(['priority'])).toBe(false);
    expect(backgroundDuties(['bulk'])).toBe(true);
    expect(backgroundDuties(['priority', 'bulk'])).toBe(true);
  });
});
