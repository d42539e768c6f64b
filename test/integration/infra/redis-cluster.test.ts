import rateLimit from '@fastify/rate-limit';
import { fastify } from 'fastify';
import { Cluster, Redis } from 'ioredis';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Deduplicator, Sink } from '../../../consumers/sink/index.ts';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { freePort } from '../../../infra/kafka/local-broker.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { quoteIdent, type Pool } from '../../../infra/postgres/pool.ts';
import { redisCheck } from '../../../infra/observability/readiness.ts';
import { createRedis } from '../../../infra/redis/client.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { startRedisCluster, type OwnRedisCluster } from '../../helpers/redis-cluster.ts';
import { log, testKafka, testPool, testPublisher, testRegistry, uniqueName } from '../../helpers/services.ts';

const services = inject('services');

describe('Redis Cluster (three masters of the test, from the installed redis-server)', () => {
  let cluster: OwnRedisCluster;
  let redis: Cluster;
  const closers: (() => Promise<unknown>)[] = [];
  const prefix = `${uniqueName('lt-test:')}:`;

  beforeAll(async () => {
    cluster = await startRedisCluster();
    closers.push(() => cluster.stop());
    // one seed is enough: the client learns the other masters from it
    redis = await createRedis({ url: cluster.urls[0]!, cluster: true, keyPrefix: prefix });
    closers.unshift(async () => redis.disconnect());
  }, 60_000);

  afterAll(async () => {
    for (const close of closers) await close().catch(() => undefined);
  });

  /** How many of this file's keys matching `pattern` each master holds (KEYS answers for one node only). */
  async function keysPerMaster(pattern: string): Promise<number[]> {
    return Promise.all(
      cluster.ports.map(async (port) => {
        const node = new Redis(port, '127.0.0.1', { lazyConnect: true });
        await node.connect();
        try {
          return (await node.keys(`${prefix}${pattern}`)).length;
        } finally {
          node.disconnect();
        }
      }),
    );
  }

  it('createRedis makes a Cluster client from a seed list; a cluster nobody answers for is refused, naming it, or degraded', async () => {
    expect(redis).toBeInstanceOf(Cluster);
    expect(redis.nodes('master')).toHaveLength(3);
    const fromAll = await createRedis({ url: cluster.urls.join(','), cluster: true, keyPrefix: prefix });
    closers.unshift(async () => fromAll.disconnect());
    await fromAll.set('greeting', 'xin chào');
    expect(await redis.get('greeting')).toBe('xin chào');

    const nobody = `redis://127.0.0.1:${await freePort()}`;
    await expect(createRedis({ url: nobody, cluster: true, keyPrefix: 't:' })).rejects.toMatchObject({
      code: 'LT_REDIS_UNREACHABLE',
      message: expect.stringContaining(`cannot reach Redis Cluster at ${nobody}`),
      hint: expect.stringContaining('cluster'),
    });
    // degrade: the client comes back not ready, and commands fail at once instead of queueing in memory
    const degraded = await createRedis({
      url: nobody,
      cluster: true,
      keyPrefix: 't:',
      whenUnreachable: 'degrade',
      log,
    });
    closers.unshift(async () => degraded.disconnect());
    expect(degraded.status).not.toBe('ready');
    await expect(degraded.get('k')).rejects.toThrow();
  });

  it('a single-node configuration still makes a plain Redis client', async () => {
    const single = await createRedis({ url: services.redisUrl, keyPrefix: prefix });
    closers.unshift(async () => single.disconnect());
    expect(single).toBeInstanceOf(Redis);
    expect(single).not.toBeInstanceOf(Cluster);
    const dedup = new Deduplicator(single, uniqueName('single-'), 60, log);
    const ids = [uuidv7(), uuidv7(), uuidv7()];
    await dedup.remember(ids.slice(0, 2));
    expect(await dedup.seen(ids)).toEqual(new Set(ids.slice(0, 2)));
    expect(dedup.failures).toBe(0);
  });

  it('dedup remembers and finds ids whose keys are spread over every master, one namespace or several', async () => {
    const namespaces = [uniqueName('ns-'), uniqueName('ns-'), uniqueName('ns-')];
    for (const namespace of namespaces) {
      const dedup = new Deduplicator(redis, namespace, 600, log);
      const applied = Array.from({ length: 2_000 }, () => uuidv7());
      const fresh = Array.from({ length: 500 }, () => uuidv7());
      await dedup.remember(applied);
      expect(await dedup.seen([...fresh, ...applied])).toEqual(new Set(applied));
      await dedup.remember(applied); // NX: remembering again changes nothing and fails nothing
      expect(dedup.failures).toBe(0);
      // one namespace's keys are not in one slot of one node: every master holds some of them
      const held = await keysPerMaster(`dedup:{${namespace}/*`);
      expect(held.reduce((sum, count) => sum + count, 0)).toBe(2_000);
      for (const count of held) expect(count).toBeGreaterThan(0);
    }
  });

  it("the query API's rate limit counts in the cluster (@fastify/rate-limit's one-key script)", async () => {
    const app = fastify();
    closers.unshift(() => app.close());
    await app.register(rateLimit, {
      max: 2,
      timeWindow: 60_000,
      redis,
      nameSpace: 'lt-query-rate:',
      skipOnError: false,
      keyGenerator: (request) => String(request.headers['x-agency']),
    });
    app.get('/', async () => 'ok');
    const call = async (agency: string): Promise<number> =>
      (await app.inject({ method: 'GET', url: '/', headers: { 'x-agency': agency } })).statusCode;
    const agencies = ['BCA', 'BTP', 'UBND-HN', 'BYT', 'BGDDT', 'BTC'];
    for (const agency of agencies) {
      expect(await call(agency)).toBe(200);
      expect(await call(agency)).toBe(200);
      expect(await call(agency)).toBe(429);
    }
    // the agencies' counters live on more than one master
    const held = await keysPerMaster('lt-query-rate:*');
    expect(held.reduce((sum, count) => sum + count, 0)).toBe(agencies.length);
    expect(held.filter((count) => count > 0).length).toBeGreaterThan(1);
  });

  describe('a subscriber sink deduplicating through the cluster', () => {
    const kafka = testKafka();
    const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
    const topic = topics.source(dataset.id);
    const stage = uniqueName('rc-test-');
    const namespace = uniqueName('rc-');
    const stops: (() => Promise<unknown>)[] = [];
    let registry: Awaited<ReturnType<typeof testRegistry>>;
    let publisher: Awaited<ReturnType<typeof testPublisher>>;
    let pool: Pool;

    beforeAll(async () => {
      registry = await testRegistry();
      pool = (await testPool()).pool;
      await ensureTopics(kafka, [
        { topic, partitions: 3 },
        { topic: topics.deadLetter(stage), partitions: 1 },
      ]);
      publisher = await testPublisher(registry.client, dictionary, 'BCA');
    }, 60_000);

    afterAll(async () => {
      await Promise.allSettled(stops.map((stop) => stop()));
    });

    /** A sink on this file's one table; each with a group of its own, all sharing the dedup namespace. */
    async function startSink(): Promise<Sink & { groupId: string }> {
      const groupId = consumerGroups.sink(uniqueName('rc-'));
      const sink = new Sink({
        kafka,
        registry: registry.client,
        dataset,
        topic,
        groupId,
        pool,
        dedup: new Deduplicator(redis, namespace, 600, log, { timeoutMs: 500 }),
        log,
        stage,
        maxWaitTimeMs: 250,
      });
      await sink.start();
      stops.push(() => sink.stop());
      return Object.assign(sink, { groupId });
    }

    async function caughtUp(sink: { groupId: string }): Promise<void> {
      expect(await waitForGroup(kafka, sink.groupId, topic, 45_000)).toBe(0);
    }

    async function rows(): Promise<Map<string, number>> {
      const { rows: stored } = await pool.query<{ personal_id: string; _version: string }>(
        `SELECT personal_id, _version FROM ${quoteIdent(first!.table.name)}`,
      );
      return new Map(stored.map((row) => [row.personal_id, Number(row._version)]));
    }

    const citizens = sampleCitizens(300, 91);
    let first: (Sink & { groupId: string }) | undefined;

    it('skips by Redis every event another sink of the same table applied, the ids on every master', async () => {
      await publisher.publishBatch(
        dataset.id,
        citizens.map((after) => ({ op: 'CREATE', version: 1, after })),
      );
      first = await startSink();
      await caughtUp(first);
      expect(first.stats.applied).toBe(300);
      expect(first.stats.dedupUnavailable).toBe(0);
      const held = await keysPerMaster(`dedup:{${namespace}:*`);
      expect(held.reduce((sum, count) => sum + count, 0)).toBe(300);
      for (const count of held) expect(count).toBeGreaterThan(0);

      // a second group reading the same table's whole topic: every id is known, none reaches PostgreSQL
      const second = await startSink();
      await caughtUp(second);
      expect(second.stats.received).toBe(300);
      expect(second.stats.skipped).toBe(300);
      expect(second.stats.applied).toBe(0);
      expect(second.stats.stale).toBe(0); // nothing fell through to the version guard
      expect(second.stats.dedupUnavailable).toBe(0);
      await second.stop();
    });

    it('with a master killed, keeps materializing on the version guard alone, counts it, and /ready says so', async () => {
      expect(first).toBeDefined();
      const ready = redisCheck(redis);
      await ready.check(); // resolves: every slot served
      await cluster.kill(2);
      const unavailableBefore = first!.stats.dedupUnavailable;
      await publisher.publishBatch(
        dataset.id,
        citizens.slice(0, 100).map((after) => ({ op: 'UPDATE', version: 2, after })),
      );
      await caughtUp(first!);
      const stored = await rows();
      expect(stored.size).toBe(300);
      expect([...stored.values()].filter((version) => version === 2)).toHaveLength(100);
      expect(first!.stats.dedupUnavailable).toBeGreaterThan(unavailableBefore);
      // once the survivors mark the master failed (cluster-node-timeout), /ready says Redis is not ready
      await expect
        .poll(
          () =>
            ready.check().then(
              () => 'ok',
              (error: Error) => error.message,
            ),
          { timeout: 20_000 },
        )
        .toBe('the Redis Cluster does not serve every slot');

      // a new group replaying the whole topic meanwhile changes nothing: what Redis cannot answer, the guard does
      const third = await startSink();
      await caughtUp(third);
      expect(third.stats.received).toBe(400);
      expect(third.stats.applied).toBe(0);
      expect(await rows()).toEqual(stored);
    });
  });
});
