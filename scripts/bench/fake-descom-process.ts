/**
 * The loopback Descom stand-in (test/helpers/fake-descom.ts) in a process of its own, for a
 * benchmark whose own process is busy: a provider never runs in the producer's event loop, and
 * one that did would answer each send only between the producer's validations.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { startFakeDescom, type FakeDescomOptions } from '../../test/helpers/fake-descom.js';
import { isMainModule } from './main-module.js';

export interface FakeDescomProcess {
  /** DESCOM_* variables pointing a worker at it. */
  env: Record<string, string>;
  /** Recipients it recorded as delivered, counted in its process. */
  recipientsDelivered(): Promise<number>;
  close(): Promise<void>;
}

type ToChild = 'count' | 'stop';
type FromChild = { env: Record<string, string> } | { delivered: number };

export async function startFakeDescomProcess(opts: FakeDescomOptions = {}): Promise<FakeDescomProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [JSON.stringify(opts)], {
    execArgv: process.execArgv,
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const next = () =>
    new Promise<FromChild>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`fake Descom process exited (code ${code})`));
      child.once('exit', onExit);
      child.once('message', (m: FromChild) => {
        child.off('exit', onExit);
        resolve(m);
      });
    });
  const ready = await next();
  if (!('env' in ready)) throw new Error('fake Descom process: expected its address first');
  return {
    env: ready.env,
    async recipientsDelivered() {
      const answer = next();
      child.send('count' satisfies ToChild);
      const m = await answer;
      return 'delivered' in m ? m.delivered : 0;
    },
    async close() {
      if (child.exitCode !== null || !child.connected) return;
      const exited = once(child, 'exit');
      child.send('stop' satisfies ToChild);
      await exited;
    },
  };
}

if (isMainModule(import.meta.url)) {
  const fake = await startFakeDescom(JSON.parse(process.argv[2] ?? '{}') as FakeDescomOptions);
  process.on('message', (m: ToChild) => {
    if (m === 'count') process.send!({ delivered: fake.recipientsDelivered().length } satisfies FromChild);
    else void fake.close().then(() => process.disconnect());
  });
  process.send!({ env: fake.env } satisfies FromChild);
}
