import { spawn } from 'node:child_process';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type avro from 'avsc';
import { Redis } from 'ioredis';
import type { IHeaders, Message, Producer } from 'kafkajs';
import { pino } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { Deduplicator, Sink, type SinkOptions } from '../../../consumers/sink/index.ts';
import { isLtError } from '../../../infra/errors.ts';
import { ensureTopics, groupLag, waitForGroup } from '../../../infra/kafka/admin.ts';
import { freePort } from '../../../infra/kafka/local-broker.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import type { Logger } from '../../../infra/logging/logger.ts';
import { quoteIdent, type Pool } from '../../../infra/postgres/pool.ts';
import type { Redis as RedisClient } from '../../../infra/redis/client.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { ChangeEvent, DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import type { Dataset, Field } from '../../../schemas/model/dataset.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { projectDataset } from '../../../schemas/model/projection.ts';
import { registerTopicSchemas } from '../../../schemas/registry/client.ts';
import { encodeWire } from '../../../schemas/registry/wire.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  childKafkaEnv,
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  testRegistry,
  uniqueName,
} from '../../helpers/services.ts';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '../../..');
const services = inject('services');

/** One record of a share stream as the coordinator would produce it. */
interface Item {
  event: ChangeEvent;
  /** `lt-agreement-revision`; omitted: no header. */
  revision?: number;
}

describe('the subscriber sink materializes a share stream into PostgreSQL', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  // rejected records go to a stage of this file's own, so a test that rejects shows it in the stats
  const stage = uniqueName('sink-test-');
  /** Sinks and consumers, stopped together first; then the clients they used. */
  const stops: (() => Promise<unknown>)[] = [];
  const closers: (() => Promise<unknown>)[] = [];
  let registry: Awaited<ReturnType<typeof testRegistry>>;
  let redis: RedisClient;
  let producer: Producer;

  beforeAll(async () => {
    registry = await testRegistry();
    redis = await testRedis();
    await ensureTopics(kafka, [{ topic: topics.deadLetter(stage), partitions: 1 }]);
    producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
    await producer.connect();
    closers.push(() => producer.disconnect());
  });

  afterAll(async () => {
    await Promise.allSettled(stops.map((stop) => stop()));
    await Promise.allSettled(closers.map((close) => close()));
  });

  /** A share topic for `shape`, its subjects registered as the coordinator does, and a way to produce to it. */
  async function shareTopic(
    shape: Dataset,
    partitions = 3,
  ): Promise<{
    topic: string;
    /** Encodes and produces, in order, each event with its revision header; a DELETE is followed by a tombstone. */
    produce: (items: Item[], as?: Dataset) => Promise<void>;
  }> {
    const topic = topics.share(uniqueName('sink-'));
    await ensureTopics(kafka, [{ topic, partitions }]);
    const encoders = new Map<Dataset, Promise<(item: Item) => Message[]>>();
    const encoderFor = (as: Dataset): Promise<(item: Item) => Message[]> => {
      let encoder = encoders.get(as);
      if (!encoder) {
        encoder = (async () => {
          const ids = await registerTopicSchemas(registry.client, topic, as, 'NONE');
          const keyType = (await registry.client.getSchema(ids.keySchemaId)) as unknown as avro.Type;
          const valueType = (await registry.client.getSchema(ids.valueSchemaId)) as unknown as avro.Type;
          return ({ event, revision }: Item): Message[] => {
            const key = encodeWire(ids.keySchemaId, keyType, { [as.key.field]: event.key });
            const headers: IHeaders =
              revision === undefined ? {} : { 'lt-agreement-revision': String(revision) };
            const value = encodeWire(ids.valueSchemaId, valueType, event);
            return event.op === 'DELETE'
              ? [
                  { key, value, headers },
                  { key, value: null, headers },
                ]
              : [{ key, value, headers }];
          };
        })();
        encoders.set(as, encoder);
      }
      return encoder;
    };
    return {
      topic,
      produce: async (items, as = shape) => {
        const encode = await encoderFor(as);
        const messages = items.flatMap(encode);
        for (let start = 0; start < messages.length; start += 2_000)
          await producer.send({ topic, acks: -1, messages: messages.slice(start, start + 2_000) });
      },
    };
  }

  /** A change event of `shape` for a sample citizen, its record projected to the shape's fields. */
  function change(
    shape: Dataset,
    citizen: DatasetRecord,
    version: number,
    op: ChangeEvent['op'] = version === 1 ? 'CREATE' : 'UPDATE',
  ): ChangeEvent {
    const common = {
      eventId: uuidv7(),
      dataset: shape.id,
      key: String(citizen.personal_id),
      version,
      occurredAt: new Date(Date.UTC(2025, 0, 1) + version * 60_000),
      sourceAgency: 'BCA',
      traceId: uniqueName('trace-'),
    };
    if (op === 'DELETE') return { ...common, op, after: null };
    const after: DatasetRecord = {};
    for (const field of shape.fields) after[field.name] = citizen[field.name] ?? null;
    return { ...common, op, after };
  }

  /** `full_name` that says which version (and revision) wrote it. */
  const labelled = (citizen: DatasetRecord, label: string): DatasetRecord => ({
    ...citizen,
    full_name: `${String(citizen.full_name)} ${label}`,
  });

  async function startSink(
    options: Partial<SinkOptions> & Pick<SinkOptions, 'topic'>,
  ): Promise<Sink & { pool: Pool; groupId: string }> {
    const pool = options.pool ?? (await testPool()).pool;
    const groupId = options.groupId ?? consumerGroups.sink(uniqueName('test-'));
    const sink = new Sink({
      kafka,
      registry: registry.client,
      dataset,
      dedup: new Deduplicator(redis, uniqueName('ns-'), 600, log),
      log,
      stage,
      maxWaitTimeMs: 250, // stop() waits for the fetch in flight
      ...options,
      pool,
      groupId,
    });
    await sink.start();
    stops.push(() => sink.stop());
    return Object.assign(sink, { pool, groupId });
  }

  async function caughtUp(sink: { groupId: string }, topic: string): Promise<void> {
    expect(await waitForGroup(kafka, sink.groupId, topic, 45_000)).toBe(0);
  }

  /** A checksum over every column but `_committed_at`, and the row count. */
  async function checksum(pool: Pool, table: string): Promise<{ sum: string | null; rows: number }> {
    const { rows } = await pool.query<{ sum: string | null; rows: number }>(
      `SELECT md5(string_agg((to_jsonb(t) - '_committed_at')::text, ',' ORDER BY t.personal_id)) AS sum,
              count(*)::int AS rows
         FROM ${quoteIdent(table)} t`,
    );
    return rows[0]!;
  }

  async function stored(
    pool: Pool,
    table: string,
  ): Promise<Map<string, { version: number; revision: number; name: string | null; deleted: boolean }>> {
    const { rows } = await pool.query<{
      personal_id: string;
      _version: string;
      _revision: number;
      full_name: string | null;
      _deleted: boolean;
    }>(`SELECT personal_id, _version, _revision, full_name, _deleted FROM ${quoteIdent(table)}`);
    return new Map(
      rows.map((row) => [
        row.personal_id,
        {
          version: Number(row._version),
          revision: row._revision,
          name: row.full_name,
          deleted: row._deleted,
        },
      ]),
    );
  }

  it('changes nothing when the same events are re-sent 10,000 times', async () => {
    const topic = topics.source(dataset.id);
    await ensureTopics(kafka, [{ topic, partitions: 3 }]);
    const publisher = await testPublisher(registry.client, dictionary, 'BCA');
    const citizens = sampleCitizens(300, 11);
    await publisher.publishBatch(
      dataset.id,
      citizens.map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await publisher.publishBatch(
      dataset.id,
      citizens.slice(0, 100).map((citizen) => ({ op: 'UPDATE', version: 2, after: labelled(citizen, 'v2') })),
    );
    await publisher.publishBatch(
      dataset.id,
      citizens.slice(280).map((citizen) => ({ op: 'DELETE', version: 3, key: String(citizen.personal_id) })),
    );

    const namespace = uniqueName('dup-');
    const sink = await startSink({ topic, dedup: new Deduplicator(redis, namespace, 600, log) });
    await caughtUp(sink, topic);
    const before = await checksum(sink.pool, sink.table.name);
    const lastWrite = async (): Promise<string> =>
      (
        await sink.pool.query<{ at: string }>(
          `SELECT max(_committed_at)::text AS at FROM ${quoteIdent(sink.table.name)}`,
        )
      ).rows[0]!.at;
    const writtenAt = await lastWrite();
    const applied = sink.stats.applied;
    expect(before.rows).toBe(300);
    expect(applied).toBeGreaterThanOrEqual(300);

    // the topic's raw records, re-produced as they are to the partitions they came from
    const raw: Message[] = [];
    const reader = kafka.consumer({ groupId: uniqueName('raw-') });
    await reader.connect();
    await reader.subscribe({ topic, fromBeginning: true });
    await reader.run({
      eachMessage: async ({ partition, message }) =>
        void raw.push({
          partition,
          key: message.key,
          value: message.value,
          headers: message.headers as IHeaders,
        }),
    });
    await expect.poll(() => raw.length, { timeout: 20_000 }).toBe(300 + 100 + 20 + 20);
    await reader.disconnect();
    const events = raw.filter((message) => message.value !== null).length;
    const resend = async (times: number): Promise<number> => {
      for (let round = 0; round < times; round++) await producer.send({ topic, acks: -1, messages: raw });
      await caughtUp(sink, topic);
      return events * times;
    };

    // half while Redis remembers the ids, half after it forgot them: then only the version guard stands
    let duplicates = await resend(12);
    const prefix = redis.options.keyPrefix ?? '';
    const remembered = await redis.keys(`${prefix}dedup:{${namespace}:*`);
    expect(remembered.length).toBe(events);
    await redis.del(...remembered.map((key) => key.slice(prefix.length)));
    const staleBefore = sink.stats.stale;
    duplicates += await resend(12);

    expect(duplicates).toBeGreaterThanOrEqual(10_000);
    expect(await checksum(sink.pool, sink.table.name)).toEqual(before);
    expect(await lastWrite()).toBe(writtenAt);
    expect(sink.stats.applied).toBe(applied);
    expect(sink.stats.stale).toBeGreaterThan(staleBefore);
    expect(sink.stats.rejected).toBe(0);
  });

  it('never moves a stored version backwards when versions arrive out of order', async () => {
    const shape = dataset;
    const { topic, produce } = await shareTopic(shape);
    const citizens = sampleCitizens(60, 22);
    const round = (version: number, op?: ChangeEvent['op']): Item[] =>
      citizens.map((citizen) => ({ event: change(shape, labelled(citizen, `v${version}`), version, op) }));
    // every batch counts as slow: each pauses its partition, which must resume for the sink to catch up
    const sink = await startSink({ topic, slowBatchMs: 0, pauseMs: 20, maxPauseMs: 80 });
    const expectAll = async (version: number, deleted = false): Promise<void> => {
      await caughtUp(sink, topic);
      const rows = await stored(sink.pool, sink.table.name);
      expect(rows.size).toBe(60);
      for (const row of rows.values()) {
        expect(row.version).toBe(version);
        expect(row.deleted).toBe(deleted);
        if (!deleted) expect(row.name).toMatch(new RegExp(` v${version}$`));
      }
    };

    await produce(round(3));
    await expectAll(3);
    await produce(round(1));
    await expectAll(3);
    await produce(round(5));
    await expectAll(5);
    await produce([...round(2), ...round(4)]); // two stale versions in one batch
    await expectAll(5);
    await produce(round(6, 'DELETE'));
    await expectAll(6, true);
    await produce(round(5)); // a late update must not bring a deleted record back
    await expectAll(6, true);
    expect(sink.stats.stale).toBeGreaterThan(0);
    expect(sink.stats.pauses).toBeGreaterThan(0);
    expect(sink.stats.rejected).toBe(0);
  });

  it('ends a sink killed mid-batch and restarted in exactly the state of an undisturbed run', async () => {
    const { topic, produce } = await shareTopic(dataset);
    const KEYS = 2_500;
    const VERSIONS = 5;
    const citizens = sampleCitizens(KEYS, 33);
    for (let version = 1; version <= VERSIONS; version++) {
      await produce(
        citizens.map((citizen, index) => ({
          revision: 1,
          event:
            version === VERSIONS && index % 10 === 0
              ? change(dataset, citizen, version, 'DELETE')
              : change(dataset, labelled(citizen, `v${version}`), version),
        })),
      );
    }
    const total = KEYS * VERSIONS + KEYS / 10; // events and the tombstones after the DELETEs

    const { pool, schema } = await testPool();
    const groupId = consumerGroups.sink(uniqueName('killed-'));
    const namespace = uniqueName('killed-');
    const lines: string[] = [];
    const child = spawn(process.execPath, ['test/helpers/run-sink.ts'], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        LT_DATABASE_URL: services.databaseUrl,
        LT_SINK_SCHEMA: schema,
        ...childKafkaEnv(),
        LT_REGISTRY_URL: registry.url,
        LT_DATASET: dataset.id,
        LT_DATASET_FROM: 'population.citizen',
        LT_TOPIC: topic,
        LT_GROUP: groupId,
        REDIS_URL: services.redisUrl,
        LT_REDIS_PREFIX: redis.options.keyPrefix ?? '',
        LT_DEDUP_NAMESPACE: namespace,
        // small fetches: many batches, so the kill lands in the middle of the stream
        LT_MAX_BYTES_PER_PARTITION: '8192',
        // the restarted sink joins the group once the killed one's session has expired
        LT_SESSION_TIMEOUT_MS: '6000',
        LOG_LEVEL: 'info',
      },
    });
    child.stdout.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => lines.push(chunk.toString()));
    const exited = new Promise<NodeJS.Signals | null>((done) =>
      child.once('exit', (_, signal) => done(signal)),
    );
    stops.push(async () => child.kill('SIGKILL'));

    await expect
      .poll(() => lines.some((line) => line.includes('sink started')), { timeout: 30_000 })
      .toBe(true);
    await expect
      .poll(() => groupLag(kafka, groupId, topic), { timeout: 30_000, interval: 50 })
      .toBeLessThan(total * 0.7);
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
    const lagAtKill = await groupLag(kafka, groupId, topic);
    const rowsAtKill = (await checksum(pool, dataset.id.replace(/[.-]/g, '_'))).rows;
    expect(lagAtKill).toBeGreaterThan(0); // killed mid-stream: part read, part not
    expect(rowsAtKill).toBeGreaterThan(0);

    const restarted = await startSink({
      topic,
      pool,
      groupId,
      dedup: new Deduplicator(redis, namespace, 600, log),
    });
    const reference = await startSink({ topic });
    await caughtUp(restarted, topic);
    await caughtUp(reference, topic);

    const want = await checksum(reference.pool, reference.table.name);
    expect(want.rows).toBe(KEYS);
    expect(await checksum(pool, restarted.table.name)).toEqual(want);
    const rows = await stored(pool, restarted.table.name);
    expect([...rows.values()].filter((row) => row.version !== VERSIONS)).toEqual([]);
    expect([...rows.values()].filter((row) => row.deleted)).toHaveLength(KEYS / 10);
    console.log(
      `sink kill test: ${total} records; killed with lag ${lagAtKill} and ${rowsAtKill} rows; ` +
        `restarted sink ${JSON.stringify(restarted.stats)}`,
    );

    // the same crash window made certain: the offset commit of the first batch fails after its upsert
    const crashing = new Sink({
      kafka,
      registry: registry.client,
      pool: (await testPool()).pool,
      dataset,
      topic,
      groupId: consumerGroups.sink(uniqueName('crashing-')),
      dedup: new Deduplicator(redis, uniqueName('crashing-'), 600, log),
      log,
      stage,
      maxWaitTimeMs: 250,
    });
    const consumer = crashing['consumer'];
    const commit = consumer.commitOffsets.bind(consumer);
    let failed = 0;
    consumer.commitOffsets = async (offsets) => {
      if (failed++ === 0)
        throw new Error('injected: crash between the database commit and the offset commit');
      return commit(offsets);
    };
    await crashing.start();
    stops.push(() => crashing.stop());
    await caughtUp({ groupId: crashing['options'].groupId }, topic);
    expect(failed).toBeGreaterThan(1);
    expect(await checksum(crashing['options'].pool, crashing.table.name)).toEqual(want);
  });

  it('keeps materializing on the version guard alone when Redis is unreachable, and counts it', async () => {
    const { topic, produce } = await shareTopic(dataset);
    const citizens = sampleCitizens(100, 44);
    const warnings: string[] = [];
    const captured: Logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
    const dead = new Redis(`redis://127.0.0.1:${await freePort()}`, {
      lazyConnect: true,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    dead.on('error', () => undefined);
    closers.push(async () => dead.disconnect());
    const sink = await startSink({
      topic,
      dedup: new Deduplicator(dead, 'dead', 600, captured),
      log: captured,
    });

    await produce(citizens.slice(0, 50).map((citizen) => ({ event: change(dataset, citizen, 1) })));
    await caughtUp(sink, topic);
    await produce(citizens.slice(50).map((citizen) => ({ event: change(dataset, citizen, 1) })));
    await produce(citizens.slice(0, 50).map((citizen) => ({ event: change(dataset, citizen, 2) })));
    await caughtUp(sink, topic);

    const rows = await stored(sink.pool, sink.table.name);
    expect(rows.size).toBe(100);
    expect([...rows.values()].filter((row) => row.version === 2)).toHaveLength(50);
    expect(sink.stats.dedupUnavailable).toBeGreaterThanOrEqual(2);
    expect(warnings.filter((line) => line.includes('redis dedup unavailable'))).toHaveLength(1);

    // a Redis that accepts connections but never answers costs a timeout per call, not a stalled sink
    const sockets = new Set<Socket>();
    const silent: Server = createServer((socket) => void sockets.add(socket));
    const port = await freePort();
    await new Promise<void>((done) => silent.listen(port, '127.0.0.1', () => done()));
    const hanging = new Redis(`redis://127.0.0.1:${port}`, { lazyConnect: true });
    hanging.on('error', () => undefined);
    closers.push(async () => {
      hanging.disconnect();
      for (const socket of sockets) socket.destroy();
      await new Promise((done) => silent.close(done));
    });
    const second = await startSink({
      topic,
      dedup: new Deduplicator(hanging, 'hanging', 600, log, { timeoutMs: 200 }),
    });
    await caughtUp(second, topic);
    expect(await checksum(second.pool, second.table.name)).toEqual(
      await checksum(sink.pool, sink.table.name),
    );
    expect(second.stats.dedupUnavailable).toBeGreaterThan(0);
  });

  it('adds a column the dataset gained, and refuses to start when a column changed type or was dropped', async () => {
    const before = projectDataset(dataset, ['full_name', 'birth_date']);
    const after = projectDataset(dataset, ['full_name', 'birth_date', 'commune_code']);
    const { topic, produce } = await shareTopic(before);
    const citizens = sampleCitizens(20, 55);
    const { pool, schema } = await testPool();
    const table = dataset.id.replace(/[.-]/g, '_');
    const columns = async (): Promise<Record<string, string>> => {
      const { rows } = await pool.query<{ column_name: string; data_type: string }>(
        `SELECT column_name, data_type FROM information_schema.columns
          WHERE table_schema = $1 AND table_name = $2`,
        [schema, table],
      );
      return Object.fromEntries(rows.map((row) => [row.column_name, row.data_type]));
    };

    const first = await startSink({ topic, pool, dataset: before });
    await produce(citizens.slice(0, 10).map((citizen) => ({ event: change(before, citizen, 1) })));
    await caughtUp(first, topic);
    await first.stop();
    // as a table made before agreement revisions existed
    await pool.query(`ALTER TABLE ${quoteIdent(table)} DROP COLUMN _revision`);
    expect(Object.keys(await columns())).not.toContain('commune_code');

    const second = await startSink({ topic, pool, dataset: after, groupId: first.groupId });
    expect(await columns()).toMatchObject({ commune_code: 'text', _revision: 'integer' });
    await produce(
      citizens.slice(10).map((citizen) => ({ event: change(after, citizen, 1), revision: 1 })),
      after,
    );
    await caughtUp(second, topic);
    const { rows } = await pool.query<{ with_commune: number; total: number }>(
      `SELECT count(commune_code)::int AS with_commune, count(*)::int AS total FROM ${quoteIdent(table)}`,
    );
    expect(rows[0]).toEqual({ with_commune: 10, total: 20 });
    await second.stop();

    const refusal = async (shape: Dataset): Promise<unknown> => {
      const sink = new Sink({
        kafka,
        registry: registry.client,
        pool,
        dataset: shape,
        topic,
        groupId: first.groupId,
        dedup: new Deduplicator(redis, 'refused', 600, log),
        log,
        maxWaitTimeMs: 250,
      });
      return sink.start().then(
        async () => {
          await sink.stop();
          return null;
        },
        (error: unknown) => error,
      );
    };
    const retyped: Dataset = {
      ...after,
      fields: after.fields.map((field) =>
        field.name === 'birth_date' ? ({ ...field, type: 'string' } as Field) : field,
      ),
    };
    const typeConflict = await refusal(retyped);
    expect(isLtError(typeConflict, 'LT_SINK_SCHEMA_CONFLICT')).toBe(true);
    const message = (typeConflict as Error).message;
    expect(message).toContain(`"${schema}"."${table}"`);
    expect(message).toContain('column "birth_date": date in the table, text in the dataset');
    expect(message).toContain(
      `ALTER TABLE "${schema}"."${table}" ALTER COLUMN "birth_date" TYPE text USING "birth_date"::text`,
    );

    const dropped = await refusal(before);
    expect(isLtError(dropped, 'LT_SINK_SCHEMA_CONFLICT')).toBe(true);
    expect((dropped as Error).message).toContain(
      'column "commune_code": text in the table, no longer in the dataset',
    );
    expect((dropped as Error).message).toContain(
      `ALTER TABLE "${schema}"."${table}" DROP COLUMN "commune_code"`,
    );
    // a refusal changes nothing
    expect((await columns()).birth_date).toBe('date');
    expect(Object.keys(await columns())).toContain('commune_code');
  });

  it('replaces a row with a higher agreement revision even when its version is lower (re-derivation)', async () => {
    const shape = projectDataset(dataset, ['full_name', 'province_code']);
    const { topic, produce } = await shareTopic(shape, 1);
    const citizens = sampleCitizens(30, 66);
    const [first, second, third] = [citizens.slice(0, 10), citizens.slice(10, 20), citizens.slice(20)];
    const items = (
      list: DatasetRecord[],
      revision: number | undefined,
      version: number,
      op?: ChangeEvent['op'],
    ): Item[] =>
      list.map((citizen) => ({
        revision,
        event: change(shape, labelled(citizen, `r${revision ?? '-'}v${version}`), version, op),
      }));
    const sink = await startSink({ topic, dataset: shape });
    const expectRows = async (
      list: DatasetRecord[],
      revision: number,
      version: number,
      deleted = false,
    ): Promise<void> => {
      await caughtUp(sink, topic);
      const rows = await stored(sink.pool, sink.table.name);
      for (const citizen of list) {
        const row = rows.get(String(citizen.personal_id));
        expect(row).toMatchObject({ revision, version, deleted });
        if (!deleted) expect(row?.name).toMatch(new RegExp(` r${revision}v${version}$`));
      }
    };

    await produce(items(first, 1, 5));
    await expectRows(first, 1, 5);
    await produce(items(first, 2, 2)); // the coordinator re-derives revision 2 from offset 0
    await expectRows(first, 2, 2);
    await produce([...items(first, 1, 7), ...items(first, undefined, 9)]); // late events of older revisions
    await expectRows(first, 2, 2);
    await produce([...items(second, 1, 5), ...items(second, 2, 1)]); // both in one batch
    await expectRows(second, 2, 1);
    await produce(items(third, 1, 3));
    await expectRows(third, 1, 3);
    await produce(items(third, 2, 0, 'DELETE')); // keys revision 2 no longer shares: retired at version 0
    await expectRows(third, 2, 0, true);
    expect(sink.stats.rejected).toBe(0);
  });

  it('purges the table when an agreement ends with the purge policy, and keeps it with retain', async () => {
    const citizens = sampleCitizens(30, 77);
    const ended = async (policy: 'purge' | 'retain'): Promise<{ rows: number; sink: Sink }> => {
      const { topic, produce } = await shareTopic(dataset);
      const sink = await startSink({ topic });
      await produce(citizens.map((citizen) => ({ event: change(dataset, citizen, 1), revision: 1 })));
      await caughtUp(sink, topic);
      expect((await checksum(sink.pool, sink.table.name)).rows).toBe(30);
      // one control record per partition, as the coordinator sends them; the value is not Avro
      const headers = { 'lt-control': 'agreement-ended', 'lt-end-policy': policy, 'lt-agreement': 'x' };
      await producer.send({
        topic,
        acks: -1,
        messages: [0, 1, 2].map((partition) => ({
          partition,
          key: null,
          value: partition === 2 ? JSON.stringify({ reason: 'revoked' }) : null,
          headers,
        })),
      });
      await caughtUp(sink, topic);
      return { rows: (await checksum(sink.pool, sink.table.name)).rows, sink };
    };

    const purged = await ended('purge');
    expect(purged.rows).toBe(0);
    expect(purged.sink.stats.agreementsEnded).toBe(3);
    expect(purged.sink.stats.rejected).toBe(0);
    const retained = await ended('retain');
    expect(retained.rows).toBe(30);
    expect(retained.sink.stats.agreementsEnded).toBe(3);
    expect(retained.sink.stats.rejected).toBe(0);
  });
});
