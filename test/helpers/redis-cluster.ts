import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../../infra/kafka/local-broker.ts';

/**
 * A real Redis Cluster of the test's own: three masters, no replicas, started from the installed
 * `redis-server` on free ports (client and cluster-bus port each) in a temporary directory, nothing kept on
 * disk, and created with `redis-cli --cluster create`. Never the machine's shared Redis.
 */
export interface OwnRedisCluster {
  /** `redis://127.0.0.1:<port>` of each master, in start order. */
  urls: string[];
  ports: number[];
  /** SIGKILLs one node (by its index in {@link ports}) and waits until it is gone. */
  kill(index: number): Promise<void>;
  /** Kills every node and removes the directory. */
  stop(): Promise<void>;
}

const REDIS_SERVER = '/usr/bin/redis-server';
const REDIS_CLI = '/usr/bin/redis-cli';

function cli(port: number, ...args: string[]): string {
  const result = spawnSync(REDIS_CLI, ['-p', String(port), ...args], { encoding: 'utf8', timeout: 30_000 });
  return `${result.stdout ?? ''}${result.stderr ?? ''}`;
}

async function until(what: string, ok: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (ok()) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`Redis Cluster: ${what} within ${timeoutMs} ms`);
}

/**
 * Starts the three nodes, creates the cluster and waits until every node says `cluster_state:ok`.
 * `nodeTimeoutMs` is the nodes' `cluster-node-timeout`: how long a killed master takes to be marked failed.
 */
export async function startRedisCluster({ nodeTimeoutMs = 2_000 } = {}): Promise<OwnRedisCluster> {
  for (const binary of [REDIS_SERVER, REDIS_CLI])
    if (!existsSync(binary)) throw new Error(`Redis Cluster: ${binary} is not installed`);
  const dir = mkdtempSync(join(tmpdir(), 'lt-redis-cluster-'));
  const children: ChildProcess[] = [];
  const ports: number[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(children.map((child) => killed(child)));
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (let index = 0; index < 3; index++) {
      const port = await freePort();
      const busPort = await freePort();
      const nodeDir = join(dir, String(port));
      mkdirSync(nodeDir);
      const child = spawn(
        REDIS_SERVER,
        [
          '--port', String(port),
          '--cluster-port', String(busPort),
          '--bind', '127.0.0.1',
          '--dir', nodeDir,
          '--cluster-enabled', 'yes',
          '--cluster-config-file', join(nodeDir, 'nodes.conf'),
          '--cluster-node-timeout', String(nodeTimeoutMs),
          '--save', '',
          '--appendonly', 'no',
        ], // prettier-ignore
        { stdio: 'ignore' },
      );
      children.push(child);
      ports.push(port);
    }
    for (const port of ports)
      await until(`node ${port} did not answer`, () => cli(port, 'PING').trim() === 'PONG');
    const created = cli(
      ports[0]!,
      '--cluster',
      'create',
      ...ports.map((port) => `127.0.0.1:${port}`),
      '--cluster-replicas',
      '0',
      '--cluster-yes',
    );
    if (!created.includes('All 16384 slots covered'))
      throw new Error(`Redis Cluster: redis-cli --cluster create failed: ${created}`);
    for (const port of ports)
      await until(`node ${port} did not reach cluster_state:ok`, () =>
        cli(port, 'CLUSTER', 'INFO').includes('cluster_state:ok'),
      );
  } catch (error) {
    await stop();
    throw error;
  }
  return {
    urls: ports.map((port) => `redis://127.0.0.1:${port}`),
    ports,
    kill: (index) => killed(children[index]!),
    stop,
  };
}

async function killed(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
}
