import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePort, startPrivateRedis, waitForRedis, type PrivateRedis } from './redis-server.js';

/** What a test run's Redis topology adds to the environment (see testConfig). */
export type RedisTopologyEnv = Record<string, string>;

export interface RedisCluster {
  /** `REDIS_CLUSTER_NODES` for smsq. */
  nodes: string;
  masters: PrivateRedis[];
  destroy(): Promise<void>;
}

/**
 * Starts a Redis Cluster of `masters` private redis-servers on loopback (no replicas), AOF
 * fsynced on every write, and waits until every slot is served.
 */
export async function startRedisCluster(masters = 3): Promise<RedisCluster> {
  const servers: PrivateRedis[] = [];
  try {
    for (let i = 0; i < masters; i++) {
      servers.push(
        await startPrivateRedis({
          appendfsync: 'always',
          clusterBus: true,
          extraArgs: [
            '--cluster-enabled',
            'yes',
            '--cluster-config-file',
            'nodes.conf',
            '--cluster-node-timeout',
            '2000',
          ],
        }),
      );
    }
  } catch (err) {
    // The servers already started would keep the test process from exiting.
    await Promise.all(servers.map((s) => s.destroy()));
    throw err;
  }
  const addresses = servers.map((s) => `127.0.0.1:${s.port}`);
  const created = spawnSync('redis-cli', ['--cluster', 'create', ...addresses, '--cluster-yes'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (created.status !== 0) {
    await Promise.all(servers.map((s) => s.destroy()));
    throw new Error(`redis-cli --cluster create failed: ${created.stdout}${created.stderr}`);
  }
  const probe = new Redis(servers[0]!.url, { maxRetriesPerRequest: 1 });
  try {
    const deadline = Date.now() + 20_000;
    while (!/cluster_state:ok/.test((await probe.call('CLUSTER', 'INFO')) as string)) {
      if (Date.now() > deadline) throw new Error('the cluster did not reach cluster_state:ok');
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    probe.disconnect();
  }
  return {
    nodes: addresses.join(','),
    masters: servers,
    destroy: async () => {
      await Promise.all(servers.map((s) => s.destroy()));
    },
  };
}

export interface RedisSentinelSet {
  /** `REDIS_SENTINELS` for smsq. */
  sentinels: string;
  masterName: string;
  master: PrivateRedis;
  replica: PrivateRedis;
  /** Asks the sentinel to fail over now; resolves once it reports the replica as the master. */
  failover(): Promise<void>;
  /** The address the sentinel currently names as master. */
  currentMaster(): Promise<string>;
  destroy(): Promise<void>;
}

function sentinelCommand(): { cmd: string; args: (conf: string) => string[] } {
  if (spawnSync('redis-sentinel', ['--version'], { stdio: 'ignore' }).status === 0) {
    return { cmd: 'redis-sentinel', args: (conf) => [conf] };
  }
  return { cmd: 'redis-server', args: (conf) => [conf, '--sentinel'] };
}

/**
 * A master, one replica and one sentinel (quorum 1) on loopback, AOF fsynced on every write on
 * both servers, so a failover can be driven by the test and `WAIT 1` has a replica to count.
 */
export async function startRedisSentinelSet(masterName = 'smsqmaster'): Promise<RedisSentinelSet> {
  const master = await startPrivateRedis({ appendfsync: 'always' });
  const replica = await startPrivateRedis({
    appendfsync: 'always',
    extraArgs: ['--replicaof', '127.0.0.1', String(master.port)],
  }).catch(async (err: unknown) => {
    await master.destroy(); // it would keep the test process from exiting
    throw err;
  });
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'smsq-sentinel-'));
  const conf = join(dir, 'sentinel.conf');
  writeFileSync(
    conf,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${dir}`,
      `sentinel monitor ${masterName} 127.0.0.1 ${master.port} 1`,
      `sentinel down-after-milliseconds ${masterName} 1000`,
      `sentinel failover-timeout ${masterName} 5000`,
      `sentinel parallel-syncs ${masterName} 1`,
      '',
    ].join('\n'),
  );
  const { cmd, args } = sentinelCommand();
  const child: ChildProcess = spawn(cmd, args(conf), { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}`;
  await waitForRedis(url);
  const sentinel = new Redis(url, { maxRetriesPerRequest: 1 });
  const currentMaster = async () => {
    const [host, p] = (await sentinel.call('SENTINEL', 'get-master-addr-by-name', masterName)) as string[];
    return `${host}:${p}`;
  };
  // The sentinel must know the replica before it can promote it.
  const deadline = Date.now() + 20_000;
  while (((await sentinel.call('SENTINEL', 'replicas', masterName)) as unknown[]).length === 0) {
    if (Date.now() > deadline) throw new Error('the sentinel did not discover the replica');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    sentinels: `127.0.0.1:${port}`,
    masterName,
    master,
    replica,
    currentMaster,
    async failover() {
      const before = await currentMaster();
      await sentinel.call('SENTINEL', 'failover', masterName);
      const until = Date.now() + 20_000;
      while ((await currentMaster()) === before) {
        if (Date.now() > until) throw new Error('the sentinel did not fail over');
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    async destroy() {
      sentinel.disconnect();
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      });
      await Promise.all([master.destroy(), replica.destroy()]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
