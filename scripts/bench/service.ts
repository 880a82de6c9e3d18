/**
 * `smsq start` (API + workers in one process) on a free loopback port for a benchmark, with `env`
 * added to this process's environment (LOG_LEVEL=warn and the API key `k` unless `env` says otherwise).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/service/redis-discovery.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));

/** The environment pointing a spawned smsq process at `url` alone, whatever this process's environment says. */
export function redisEnvFor(url: string): Record<string, string> {
  return { REDIS_URL: url, REDIS_CLUSTER_NODES: '', REDIS_SENTINELS: '' };
}

export interface BenchService {
  url: string;
  /** Bearer token accepted by the API. */
  apiKey: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startBenchService(env: Record<string, string>): Promise<BenchService> {
  const port = await freePort();
  const apiKey = 'k';
  const service = spawn(process.execPath, ['bin/smsq.js', 'start'], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      SMSQ_API_KEYS: apiKey,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (service.exitCode !== null || service.signalCode !== null) return;
    const exited = once(service, 'exit');
    service.kill('SIGTERM');
    const timer = setTimeout(() => service.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };
  try {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const ok = await fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      );
      if (ok) break;
      if (service.exitCode !== null || Date.now() > deadline)
        throw new Error('smsq start did not become ready');
      await new Promise((r) => setTimeout(r, 100));
    }
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, apiKey, pid: service.pid!, stop };
}
