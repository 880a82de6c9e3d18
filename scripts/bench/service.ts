/**
 * smsq as child processes on free loopback ports for a benchmark, with `env` added to this
 * process's environment (LOG_LEVEL=warn and the API key `k` unless `env` says otherwise): `smsq
 * start` (API + workers in one process), or `smsq api` beside `smsq worker` processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { freePort } from '../../src/service/redis-discovery.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const API_KEY = 'k';

/** The environment pointing a spawned smsq process at `url` alone, whatever this process's environment says. */
export function redisEnvFor(url: string): Record<string, string> {
  return { REDIS_URL: url, REDIS_CLUSTER_NODES: '', REDIS_SENTINELS: '' };
}

export interface BenchService {
  /** The API's `http://127.0.0.1:port`. */
  url: string;
  /** Bearer token accepted by the API. */
  apiKey: string;
  /** The pid of the process serving the API. */
  pid: number;
  /** SIGTERM to every process (SIGKILL after 30 s), and waits for their exit. */
  stop(): Promise<void>;
}

interface BenchProcess {
  child: ChildProcess;
  stop(): Promise<void>;
}

function spawnSmsq(args: readonly string[], port: number, env: Record<string, string>): BenchProcess {
  const child = spawn(process.execPath, ['bin/smsq.js', ...args], {
    cwd: ROOT,
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      SMSQ_API_KEYS: API_KEY,
      LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, 'exit');
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  };
  return { child, stop };
}

/** Waits for `url`/readyz to answer 200 (an API, or a worker's operations port). */
async function ready(url: string, what: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    if (child.exitCode !== null || Date.now() > deadline) throw new Error(`${what} did not become ready`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Starts `apiArgs` (serving the API on PORT) and one process per `workerArgs` entry (each given
 * `--http-port`, so its readiness can be awaited), and resolves once every one is ready.
 */
async function startProcesses(
  env: Record<string, string>,
  apiArgs: readonly string[],
  workerArgs: readonly (readonly string[])[] = [],
): Promise<BenchService> {
  const port = await freePort();
  const api = spawnSmsq(apiArgs, port, env);
  const processes = [api];
  const stop = async () => {
    await Promise.all(processes.map((p) => p.stop()));
  };
  try {
    const url = `http://127.0.0.1:${port}`;
    const waits = [ready(url, `smsq ${apiArgs.join(' ')}`, api.child)];
    for (const args of workerArgs) {
      const opsPort = await freePort();
      const worker = spawnSmsq([...args, '--http-port', String(opsPort)], port, env);
      processes.push(worker);
      waits.push(ready(`http://127.0.0.1:${opsPort}`, `smsq ${args.join(' ')}`, worker.child));
    }
    await Promise.all(waits);
    return { url, apiKey: API_KEY, pid: api.child.pid!, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** `smsq start`: API and every worker in one process. */
export function startBenchService(env: Record<string, string>): Promise<BenchService> {
  return startProcesses(env, ['start']);
}

/** The production shape: `smsq api` beside one `smsq worker` (both lanes), each a process of its own. */
export function startBenchApiAndWorker(env: Record<string, string>): Promise<BenchService> {
  return startProcesses(env, ['api'], [['worker']]);
}

/**
 * The deployment shape for transactional traffic beside campaigns: `smsq api`, `smsq worker
 * --lane priority` and `smsq worker --lane bulk` (campaign runs, bulk sending and the background
 * duties), each a process of its own.
 */
export function startBenchLaneWorkers(env: Record<string, string>): Promise<BenchService> {
  return startProcesses(
    env,
    ['api'],
    [
      ['worker', '--lane', 'priority'],
      ['worker', '--lane', 'bulk'],
    ],
  );
}
