/**
 * The soak's worker processes: a fixed number of real `workers/worker.ts` processes, each restarted
 * when it dies, whether the soak killed it or it ended by itself (the latter is counted: a worker
 * should survive a Redis restart or a provider fault).
 */
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnWorker, type WorkerProcess } from '../test/helpers/worker-process.js';

export class WorkerPool {
  private readonly slots: (WorkerProcess | undefined)[];
  private readonly killing = new Set<WorkerProcess>();
  private stopped = false;
  private generation = 0;
  /** Exits the soak did not cause, with their exit code or signal. */
  readonly unexpectedExits: { slot: number; exit: number | string }[] = [];

  constructor(
    private readonly env: Record<string, string>,
    size: number,
    /** Directory where each process's output is written when it ends (`worker-<slot>-<n>.log`). */
    private readonly logDir: string,
  ) {
    this.slots = Array.from({ length: size }, () => undefined);
  }

  get size(): number {
    return this.slots.length;
  }

  /** Starts every slot's process and resolves once each says its workers are running. */
  async start(): Promise<void> {
    this.slots.forEach((_, slot) => this.spawn(slot));
    await Promise.all(
      this.slots.map(
        (worker) => worker?.waitForOutput('Campaign workers started', 30_000) ?? Promise.resolve(),
      ),
    );
  }

  private spawn(slot: number): void {
    if (this.stopped) return;
    const worker = spawnWorker(this.env);
    const name = `worker-${slot}-${this.generation++}.log`;
    this.slots[slot] = worker;
    void worker.exited.then((exit) => {
      appendFileSync(join(this.logDir, name), worker.output());
      if (this.slots[slot] === worker) this.slots[slot] = undefined;
      if (this.killing.delete(worker) || this.stopped) return;
      this.unexpectedExits.push({ slot, exit });
      console.log(`[chaos] worker ${slot} exited by itself (${exit}); restarting it (log ${name})`);
      setTimeout(() => this.spawn(slot), 1_000);
    });
  }

  /** The running process of `slot`, if any. */
  process(slot: number): WorkerProcess | undefined {
    return this.slots[slot];
  }

  /** SIGKILLs `slot`'s process and resolves once it exited; `restart` brings a new one up. */
  async kill(slot: number): Promise<boolean> {
    const worker = this.slots[slot];
    if (!worker) return false;
    this.killing.add(worker);
    worker.child.kill('SIGCONT'); // a stopped process must run to die cleanly in our books
    await worker.kill('SIGKILL');
    return true;
  }

  /** Starts a new process in `slot` if it has none (it says it is running a few seconds later). */
  restart(slot: number): void {
    if (!this.slots[slot]) this.spawn(slot);
  }

  /** Kills every process (SIGKILL: nothing is left to finish) and keeps their logs. */
  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(
      this.slots.map(async (worker) => {
        if (!worker) return;
        this.killing.add(worker);
        worker.child.kill('SIGCONT');
        await worker.kill('SIGKILL');
      }),
    );
  }
}
