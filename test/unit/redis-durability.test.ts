import { describe, expect, it } from 'vitest';
import {
  hasWaitAof,
  judgeRedisDurability,
  planDurabilityWait,
  type RedisDurabilityFacts,
} from '../../src/queue/durability.js';

const server = (version: string, facts: Partial<RedisDurabilityFacts> = {}): RedisDurabilityFacts => ({
  version,
  snapshots: false,
  replicasOnline: 0,
  ...facts,
});

const WAITAOF = { command: 'WAITAOF', numlocal: 1, numreplicas: 0 } as const;
const wait = (numreplicas: number) => ({ command: 'WAIT', numreplicas }) as const;

describe('hasWaitAof', () => {
  it.each([
    ['7.0.15', false],
    ['7.1.99', false],
    ['7.2.0', true],
    ['7.4.1', true],
    ['8.0.0', true],
    ['6.2.14', false],
    ['', false],
  ])('Redis %s → %s', (version, expected) => {
    expect(hasWaitAof(server(version))).toBe(expected);
  });

  it('is false when the server refused WAITAOF', () => {
    expect(hasWaitAof(server('7.2.4', { waitAofRefused: true }))).toBe(false);
  });
});

describe('planDurabilityWait: which command runs after the `sending` write', () => {
  it.each<[string, Partial<RedisDurabilityFacts>, number, unknown[]]>([
    // Redis 7.0 (this machine): WAITAOF does not exist; only replicas can be waited for.
    ['7.0.15', { appendonly: true, appendfsync: 'always' }, 0, []],
    ['7.0.15', { appendonly: true, appendfsync: 'everysec' }, 0, []],
    ['7.0.15', { appendonly: false }, 0, []],
    ['7.0.15', { appendonly: true, appendfsync: 'everysec' }, 2, [wait(2)]],
    ['7.0.15', { appendonly: false }, 1, [wait(1)]],
    // Redis ≥ 7.2: WAITAOF for the local fsync unless `always` already fsynced before answering.
    ['7.2.0', { appendonly: true, appendfsync: 'everysec' }, 0, [WAITAOF]],
    ['7.2.0', { appendonly: true, appendfsync: 'no' }, 0, [WAITAOF]],
    ['7.2.0', { appendonly: true, appendfsync: 'always' }, 0, []],
    ['7.4.1', { appendonly: true, appendfsync: 'everysec' }, 1, [WAITAOF, wait(1)]],
    ['7.4.1', { appendonly: true, appendfsync: 'always' }, 1, [wait(1)]],
    // WAITAOF with numlocal 1 is an error when the AOF is off: never sent.
    ['7.4.1', { appendonly: false }, 0, []],
    ['7.4.1', { appendonly: false }, 3, [wait(3)]],
    // CONFIG refused: appendfsync unknown, the AOF known from INFO → WAITAOF is safe either way.
    ['7.4.1', { appendonly: true, configError: 'NOPERM' }, 0, [WAITAOF]],
    ['7.4.1', { appendonly: undefined, configError: 'NOPERM' }, 0, []],
    ['7.4.1', { appendonly: true, appendfsync: 'everysec', waitAofRefused: true }, 0, []],
  ])('Redis %s %j, minReplicas %i → %j', (version, facts, minReplicas, expected) => {
    expect(planDurabilityWait(server(version, facts), minReplicas)).toEqual(expected);
  });
});

describe('judgeRedisDurability: the start-up verdict', () => {
  it.each<[string, Partial<RedisDurabilityFacts>, number, boolean | undefined, RegExp]>([
    ['7.0.15', { appendonly: true, appendfsync: 'always' }, 0, true, /appendfsync always/],
    ['7.0.15', { appendonly: true, appendfsync: 'everysec' }, 0, false, /up to about 1 s/],
    ['7.0.15', { appendonly: true, appendfsync: 'no' }, 0, false, /appendfsync no/],
    ['7.0.15', { appendonly: false, snapshots: false }, 0, false, /persists nothing/],
    ['7.0.15', { appendonly: false, snapshots: true }, 0, false, /last RDB snapshot/],
    ['7.2.4', { appendonly: true, appendfsync: 'everysec' }, 0, true, /WAITAOF/],
    ['7.2.4', { appendonly: false }, 0, false, /append-only file is off|persists nothing/],
    [
      '7.2.4',
      { appendonly: true, appendfsync: 'everysec', waitAofRefused: true },
      0,
      false,
      /refuses WAITAOF/,
    ],
    // Replicas verified online make it durable whatever the local disk does.
    ['7.0.15', { appendonly: false, replicasOnline: 1 }, 1, true, /1 replica\(s\) \(WAIT\)/],
    ['7.0.15', { appendonly: true, appendfsync: 'everysec', replicasOnline: 2 }, 2, true, /WAIT/],
    ['7.0.15', { appendonly: false, replicasOnline: 0 }, 1, false, /but 0 replica/],
    // CONFIG refused (managed Redis): unknown unless replicas or WAITAOF answer for it.
    ['7.0.15', { appendonly: true, configError: 'NOPERM' }, 0, undefined, /appendfsync cannot be read/],
    ['7.0.15', { appendonly: undefined, configError: 'NOPERM' }, 0, undefined, /cannot tell/],
    ['7.0.15', { appendonly: undefined, configError: 'NOPERM', replicasOnline: 1 }, 1, true, /WAIT/],
    ['7.2.4', { appendonly: true, configError: 'NOPERM' }, 0, true, /WAITAOF/],
  ])('Redis %s %j, minReplicas %i → durable %s', (version, facts, minReplicas, durable, summary) => {
    const verdict = judgeRedisDurability(server(version, facts), minReplicas);
    expect(verdict.durable).toBe(durable);
    expect(verdict.summary).toMatch(summary);
    if (durable === true) expect(verdict.fixes).toEqual([]);
    else expect(verdict.fixes.join(' ')).toMatch(/appendfsync always.*7\.2.*SMSQ_REDIS_MIN_REPLICAS/);
  });

  it('says a non-durable write may be sent twice, and a Redis with no persistence loses everything', () => {
    expect(
      judgeRedisDurability(server('7.0.15', { appendonly: true, appendfsync: 'everysec' }), 0).consequence,
    ).toMatch(/look never sent: it may be sent twice/);
    expect(judgeRedisDurability(server('7.0.15', { appendonly: false }), 0).consequence).toMatch(
      /every queued request, batch state and the ledger are lost.*development/,
    );
  });

  it('warns when CONFIG is refused and when fewer replicas are online than required', () => {
    const verdict = judgeRedisDurability(
      server('7.2.4', { appendonly: true, configError: 'NOPERM no permissions', replicasOnline: 1 }),
      2,
    );
    expect(verdict.durable).toBe(true); // WAITAOF keeps the local disk honest
    expect(verdict.warnings).toEqual([
      'CONFIG GET is not allowed on this Redis (NOPERM no permissions)',
      'only 1 of the 2 replica(s) SMSQ_REDIS_MIN_REPLICAS requires are online: provider calls are refused until they are',
    ]);
  });
});
