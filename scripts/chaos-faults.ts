/**
 * The soak's fault injector: at random moments (seeded), one random fault among provider faults on
 * both fakes, a worker SIGKILLed or frozen past its lock, or Redis SIGKILLed and started again.
 * Every fault is bounded: in count (a cap per kind, scaled by the run's length), in time (each
 * outage or freeze ends by itself within seconds), and one scripted provider fault at most waits
 * per fake route (a new one is scripted only once the fake has seen a request on that route since).
 */
import type { FakeDescom } from '../test/helpers/fake-descom.js';
import type { FakeOvh, FakeOvhRoute } from '../test/helpers/fake-ovh.js';
import type { PrivateRedis } from '../test/helpers/redis-server.js';
import type { Random } from './chaos-random.js';
import type { WorkerPool } from './chaos-workers.js';

/** Every kind of fault the soak injects, with its relative weight (how often it is drawn). */
const WEIGHTS = {
  'descom-503': 3,
  'descom-429': 2,
  'descom-5xx': 2,
  'descom-drop-after-accept': 2,
  'descom-drop-on-connect': 2,
  'descom-hang': 2,
  'descom-held': 3,
  'ovh-503': 3,
  'ovh-429': 2,
  'ovh-5xx': 2,
  'ovh-drop-after-accept': 2,
  'ovh-drop-before-accept': 2,
  'ovh-hang': 2,
  'ovh-accept-then-hang': 2,
  'ovh-accept-late': 3,
  'ovh-pending': 2,
  'ovh-lookup-503': 1,
  'ovh-jobs-hang': 1,
  'worker-sigkill': 2,
  'worker-sigstop': 2,
  'redis-sigkill': 1,
} as const;

export type FaultKind = keyof typeof WEIGHTS;

/** Most faults of one kind per minute of fault injection (at least one each). */
const MAX_PER_MINUTE: Partial<Record<FaultKind, number>> = {
  'worker-sigkill': 1,
  'worker-sigstop': 1,
  'redis-sigkill': 0.5,
  'ovh-pending': 1,
};
const DEFAULT_MAX_PER_MINUTE = 3;

export interface FaultTargets {
  descom: FakeDescom;
  ovh: FakeOvh;
  redis: PrivateRedis;
  workers: WorkerPool;
  random: Random;
  /** Workers' lock duration, in ms: a freeze lasts 1.5 to 3 times as long. */
  lockDurationMs: number;
}

type Gate = 'descom-send' | FakeOvhRoute;

export class FaultInjector {
  readonly counts: Record<FaultKind, number> = Object.fromEntries(
    Object.keys(WEIGHTS).map((k) => [k, 0]),
  ) as Record<FaultKind, number>;
  /** Every fault injected, in order: `<ISO time> <kind>[ detail]`, for the run's log. */
  readonly events: string[] = [];
  /** Wall time Redis was down, and workers were dead or frozen, in ms. */
  readonly downtimeMs = { redis: 0, worker: 0, frozen: 0 };
  private readonly caps: Record<FaultKind, number>;
  private readonly running = new Set<Promise<void>>();
  private processFaultBusy = false;
  /** Per gated route, how many requests the fake had seen when its last fault was scripted. */
  private readonly gates = new Map<Gate, number>();

  constructor(
    private readonly t: FaultTargets,
    faultMinutes: number,
  ) {
    this.caps = Object.fromEntries(
      (Object.keys(WEIGHTS) as FaultKind[]).map((k) => [
        k,
        Math.max(1, Math.floor((MAX_PER_MINUTE[k] ?? DEFAULT_MAX_PER_MINUTE) * faultMinutes)),
      ]),
    ) as Record<FaultKind, number>;
  }

  /** Injects faults at random intervals (0.2 to 2 s) until `until` (epoch ms), then waits for the last to end. */
  async run(until: number): Promise<void> {
    while (Date.now() < until) {
      await sleep(this.t.random.int(200, 2_000));
      if (Date.now() >= until) break;
      const kind = this.t.random.weighted(WEIGHTS);
      if (this.counts[kind] >= this.caps[kind]) continue;
      if (this.inject(kind)) {
        this.counts[kind]++;
        this.events.push(`${new Date().toISOString()} ${kind}`);
      }
    }
    await Promise.all(this.running);
  }

  private seen(gate: Gate): number {
    if (gate === 'descom-send')
      return this.t.descom.requests.filter((r) => r.path === '/api/sms/send').length;
    return this.t.ovh.requests.filter((r) => r.route === gate).length;
  }

  /** True (and closes the gate) when the route has seen a request since its last scripted fault. */
  private openGate(gate: Gate): boolean {
    const seen = this.seen(gate);
    const last = this.gates.get(gate);
    if (last !== undefined && seen <= last) return false;
    this.gates.set(gate, seen);
    return true;
  }

  private background(task: () => Promise<void>): void {
    const p = task().finally(() => this.running.delete(p));
    this.running.add(p);
  }

  /** Injects one fault of `kind`; false when it cannot be injected now (nothing happened). */
  private inject(kind: FaultKind): boolean {
    const { descom, ovh, random } = this.t;
    const POST: FakeOvhRoute = 'POST /sms/{sn}/jobs';
    if (kind.startsWith('descom-') && !this.openGate('descom-send')) return false;
    if (kind.startsWith('ovh-') && kind !== 'ovh-pending') {
      const gate: FakeOvhRoute =
        kind === 'ovh-lookup-503'
          ? 'GET /sms/{sn}/outgoing'
          : kind === 'ovh-jobs-hang'
            ? 'GET /sms/{sn}/jobs'
            : POST;
      if (!this.openGate(gate)) return false;
    }
    switch (kind) {
      case 'descom-503':
        descom.script({ status: 503 });
        return true;
      case 'descom-429':
        descom.script({ status: 429, headers: { 'Retry-After': String(random.int(1, 2)) } });
        return true;
      case 'descom-5xx':
        descom.script({ status: random.pick([500, 502, 504]) });
        return true;
      case 'descom-drop-after-accept':
        descom.script('drop-before-response');
        return true;
      case 'descom-drop-on-connect':
        descom.script('drop-on-connect');
        return true;
      case 'descom-hang':
        descom.script('hang');
        return true;
      case 'descom-held': {
        // Released before or after our deadline: Descom acts then, whether we still wait or not.
        const held = descom.holdNext(random.chance(0.8) ? 'ok' : { status: 503 });
        const releaseAfterMs = random.int(300, 4_000);
        this.background(async () => {
          await Promise.race([held.received, sleep(30_000)]);
          await sleep(releaseAfterMs);
          held.release();
        });
        return true;
      }
      case 'ovh-503':
        ovh.script(POST, { status: 503 });
        return true;
      case 'ovh-429':
        ovh.script(POST, { status: 429, headers: { 'Retry-After': String(random.int(1, 2)) } });
        return true;
      case 'ovh-5xx':
        ovh.script(POST, random.chance(0.5) ? 'html-502' : { status: random.pick([500, 504]) });
        return true;
      case 'ovh-drop-after-accept':
        ovh.script(POST, 'drop-after-accept');
        return true;
      case 'ovh-drop-before-accept':
        ovh.script(POST, 'drop-before-accept');
        return true;
      case 'ovh-hang':
        ovh.script(POST, 'hang');
        return true;
      case 'ovh-accept-then-hang':
        ovh.script(POST, 'accept-then-hang');
        return true;
      case 'ovh-accept-late':
        ovh.script(POST, { acceptLate: random.int(500, 5_000) });
        return true;
      case 'ovh-lookup-503':
        ovh.script('GET /sms/{sn}/outgoing', { status: 503 });
        return true;
      case 'ovh-jobs-hang':
        ovh.script('GET /sms/{sn}/jobs', 'hang');
        return true;
      case 'ovh-pending': {
        const pendingMs = random.int(1_000, 8_000);
        const forMs = random.int(5_000, 20_000);
        ovh.setPendingMs(pendingMs);
        this.background(async () => {
          await sleep(forMs);
          ovh.setPendingMs(0);
        });
        return true;
      }
      case 'worker-sigkill':
      case 'worker-sigstop':
      case 'redis-sigkill':
        return this.injectProcessFault(kind);
    }
  }

  /** One process fault at a time, so the system is never down twice over. */
  private injectProcessFault(kind: 'worker-sigkill' | 'worker-sigstop' | 'redis-sigkill'): boolean {
    if (this.processFaultBusy) return false;
    const { workers, redis, random, lockDurationMs } = this.t;
    const slot = random.int(0, workers.size - 1);
    const downMs = random.int(200, 3_000);
    const frozenMs = random.int(Math.round(lockDurationMs * 1.5), lockDurationMs * 3);
    if (kind !== 'redis-sigkill' && !workers.process(slot)) return false;
    this.processFaultBusy = true;
    this.background(async () => {
      const began = Date.now();
      try {
        if (kind === 'worker-sigkill') {
          console.log(`[chaos] SIGKILL worker ${slot}; restart in ${downMs} ms`);
          await workers.kill(slot);
          await sleep(downMs);
          workers.restart(slot);
          this.downtimeMs.worker += Date.now() - began;
        } else if (kind === 'worker-sigstop') {
          const child = workers.process(slot)?.child;
          console.log(`[chaos] SIGSTOP worker ${slot} for ${frozenMs} ms`);
          child?.kill('SIGSTOP');
          await sleep(frozenMs);
          child?.kill('SIGCONT');
          this.downtimeMs.frozen += Date.now() - began;
        } else {
          console.log(`[chaos] SIGKILL redis; start again in ${downMs} ms`);
          await redis.kill('SIGKILL');
          await sleep(downMs);
          await redis.start();
          this.downtimeMs.redis += Date.now() - began;
        }
      } finally {
        this.processFaultBusy = false;
      }
    });
    return true;
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
