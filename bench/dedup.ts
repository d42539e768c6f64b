// The dedup benchmark (issue 13, Redis Cluster). Not a test: it prints figures.
//   node bench/dedup.ts                          # 200 batches of 1,000 ids, on REDIS_URL and on a cluster of its own
//   BENCH_BATCH=5000 BENCH_ROUNDS=50 node bench/dedup.ts
// What one sink batch costs in Redis (consumers/sink/dedup.ts): seen() of new ids, remember() after the commit,
// seen() again (all known), for each id spread over 1 slot group (every key of a namespace in one slot) and
// over 16 (the default). Runs against REDIS_URL (REDIS_CLUSTER as set) and against a three-master Redis
// Cluster it starts from the installed redis-server (test/helpers/redis-cluster.ts), then stops.
import { v7 as uuidv7 } from 'uuid';
import { Deduplicator } from '../consumers/sink/dedup.ts';
import { readEnv } from '../infra/config/options.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { createRedis, type RedisClient } from '../infra/redis/client.ts';
import { startRedisCluster } from '../test/helpers/redis-cluster.ts';
import { report } from './measure.ts';

const batch = Number(process.env.BENCH_BATCH ?? 1_000);
const rounds = Number(process.env.BENCH_ROUNDS ?? 200);
const env = readEnv();
const log = createLogger('warn');

const percentile = (sorted: number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;

async function measure(target: string, redis: RedisClient, slotGroups: number): Promise<void> {
  const dedup = new Deduplicator(redis, `bench-${Date.now()}-${slotGroups}`, 60, log, {
    slotGroups,
    timeoutMs: 10_000,
  });
  const took: number[] = [];
  for (let round = 0; round < rounds; round++) {
    const ids = Array.from({ length: batch }, () => uuidv7());
    const started = performance.now();
    const unseen = await dedup.seen(ids);
    await dedup.remember(ids);
    const known = await dedup.seen(ids);
    took.push(performance.now() - started);
    if (unseen.size !== 0 || known.size !== batch) throw new Error('dedup answered wrongly');
  }
  if (dedup.failures > 0) throw new Error(`${dedup.failures} Redis calls failed`);
  took.sort((a, b) => a - b);
  const total = took.reduce((sum, ms) => sum + ms, 0);
  const result = {
    target,
    slotGroups,
    batch,
    rounds,
    p50Ms: Number(percentile(took, 50).toFixed(2)),
    p99Ms: Number(percentile(took, 99).toFixed(2)),
    idsPerSecond: Math.round((batch * rounds) / (total / 1000)),
  };
  console.log(
    `${target.padEnd(28)} slot groups ${String(slotGroups).padStart(2)}: batch of ${batch} ` +
      `(seen + remember + seen) p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.idsPerSecond} ids/s`,
  );
  report(result);
}

const single = await createRedis({
  url: env.REDIS_URL,
  cluster: env.REDIS_CLUSTER,
  keyPrefix: 'lt:bench-dedup:',
});
const cluster = await startRedisCluster();
try {
  const own = await createRedis({ url: cluster.urls, cluster: true, keyPrefix: 'lt:bench-dedup:' });
  try {
    for (const slotGroups of [1, 16]) {
      await measure(`REDIS_URL (${env.REDIS_CLUSTER ? 'cluster' : 'one node'})`, single, slotGroups);
      await measure('own cluster (3 masters)', own, slotGroups);
    }
  } finally {
    own.disconnect();
  }
} finally {
  single.disconnect(); // the ids it wrote expire within 60 s
  await cluster.stop();
}
