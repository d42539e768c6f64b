import type { IHeaders, Kafka, KafkaMessage, Message } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, groupLag, waitForGroup } from '../../../infra/kafka/admin.ts';
import { subjects, topics } from '../../../infra/kafka/topics.ts';
import { quoteIdent, type Pool } from '../../../infra/postgres/pool.ts';
import type { Redis } from '../../../infra/redis/client.ts';
import { NgdbSink, type NgdbSinkOptions } from '../../../consumers/ngdb/index.ts';
import { datasetAsOf, historyOf, stateAsOf } from '../../../schemas/postgres/index.ts';
import { Publisher, type Change } from '../../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../../producers/sample/enterprises.ts';
import type { ChangeEvent, DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../../schemas/model/dataset.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import { createRegistryClient, type SchemaRegistry } from '../../../schemas/registry/client.ts';
import { CUT_HERE, cutAndCraft, HUGE_ARRAY_BLOCK } from '../../helpers/hostile.ts';
import {
  log,
  testAgentDb,
  testKafka,
  testPool,
  testRedis,
  testRegistry,
  uniqueName,
  registryIdentity,
  publishDictionary,
} from '../../helpers/services.ts';

/**
 * The real dictionary reduced to copies of the given datasets under one unique prefix
 * (`t<random>.citizen`, `t<random>.enterprise`): the NGDB sink reads every dataset of the dictionary it is
 * given, so it must hold only this file's.
 */
function isolatedDictionary(ids: string[]): { dictionary: Dictionary; datasets: Dataset[] } {
  const real = loadDictionary();
  const prefix = uniqueName('t');
  const datasets = ids.map((id) => ({
    ...getDataset(real, id),
    id: `${prefix}.${id.split('.').slice(1).join('.')}`,
  }));
  return {
    dictionary: { ...real, datasets: new Map(datasets.map((dataset) => [dataset.id, dataset])) },
    datasets,
  };
}

const at = (iso: string): Date => new Date(iso);
const T = {
  created: at('2024-01-10T08:00:00Z'),
  moved: at('2024-02-10T08:00:00Z'),
  renamed: at('2024-03-10T08:00:00Z'),
  deleted: at('2024-04-10T08:00:00Z'),
  late: at('2024-05-10T08:00:00Z'),
  /** citizen 0's versions 4…12, one day apart from here */
  series: at('2024-06-01T08:00:00Z'),
};
const FAR_FUTURE = at('2100-01-01T00:00:00Z');
const before = (date: Date): Date => new Date(date.getTime() - 1);
const PARTITIONS = 3;

async function settle(kafka: Kafka, groupId: string, sourceTopics: string[]): Promise<void> {
  for (const topic of sourceTopics) expect(await waitForGroup(kafka, groupId, topic, 60_000)).toBe(0);
}

/** Reads a topic from the beginning with a throwaway group until `done` says it has enough. */
async function readTopic(
  kafka: Kafka,
  topic: string,
  done: (messages: KafkaMessage[]) => boolean,
): Promise<KafkaMessage[]> {
  const consumer = kafka.consumer({ groupId: uniqueName('ngdb-reader-') });
  const messages: KafkaMessage[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await expect.poll(() => done(messages), { timeout: 30_000, interval: 200 }).toBe(true);
  } finally {
    await consumer.disconnect();
  }
  return messages;
}

const header = (headers: IHeaders | undefined, name: string): string | undefined =>
  headers?.[name]?.toString();

describe('the NGDB sink keeps current state and full history of every dataset (decree method (c))', () => {
  const kafka = testKafka();
  const { dictionary, datasets } = isolatedDictionary(['population.citizen', 'business.enterprise']);
  const [citizenSet, enterpriseSet] = datasets as [Dataset, Dataset];
  const citizenTopic = topics.source(citizenSet.id);
  const enterpriseTopic = topics.source(enterpriseSet.id);
  const sourceTopics = [citizenTopic, enterpriseTopic];
  const groupId = uniqueName('lt.ngdb.test-');
  const published: ChangeEvent[] = [];
  const closers: (() => Promise<void>)[] = [];

  let registry: SchemaRegistry;
  let registryUrl: string;
  let pool: Pool;
  let redis: Redis;
  let bca: Publisher;
  let btc: Publisher;
  /** A second BCA Agent Node with its own ledger (as after a failover): the only way a stale version gets through. */
  let failover: Publisher;
  let sink: NgdbSink;

  const citizens = sampleCitizens(12, 2026);
  const citizenKey = (index: number): string => String(citizens[index]!.personal_id);
  const enterprises = sampleEnterprises(8, 61);

  const startSink = async (overrides: Partial<NgdbSinkOptions> = {}): Promise<NgdbSink> => {
    const started = new NgdbSink({ kafka, registry, pool, dictionary, redis, log, groupId, ...overrides });
    closers.push(() => started.stop());
    await started.start();
    return started;
  };
  const publish = async (via: Publisher, dataset: Dataset, changes: Change[]): Promise<ChangeEvent[]> => {
    const result = await via.publishBatch(dataset.id, changes);
    expect(result.rejected).toBe(0);
    published.push(...result.events);
    return result.events;
  };
  const eventsOf = (dataset: Dataset, key?: string): ChangeEvent[] =>
    published.filter((event) => event.dataset === dataset.id && (key === undefined || event.key === key));
  const recordOf = (dataset: Dataset, key: string, version: number): DatasetRecord =>
    eventsOf(dataset, key).find((event) => event.version === version)!.after!;
  const table = (dataset: Dataset, suffix = ''): string =>
    quoteIdent(`${dataset.id.replace(/[.-]/g, '_')}${suffix}`);

  beforeAll(async () => {
    ({ client: registry, url: registryUrl } = await testRegistry());
    pool = (await testPool()).pool;
    redis = await testRedis();
    await ensureTopics(kafka, [
      { topic: citizenTopic, partitions: PARTITIONS },
      { topic: enterpriseTopic, partitions: PARTITIONS },
    ]);
    await publishDictionary(registry, dictionary);
    const publisher = async (agency: string): Promise<Publisher> => {
      const made = new Publisher({
        kafka,
        registry,
        dictionary,
        agency,
        ledger: (await testAgentDb()).ledger,
        log,
      });
      await made.connect();
      closers.push(() => made.close());
      return made;
    };
    bca = await publisher('BCA');
    btc = await publisher('BTC');
    failover = await publisher('BCA');

    // BCA: 12 citizens created; 0–5 move house (v2); 0–2 change name (v3); 1, 2 (v4) and 11 (v2) are
    // deleted; the failover node then sends a stale v2 of citizen 2, dated after its deletion; citizen 0
    // goes on to version 12 (so "as of" must order versions as numbers, not text).
    const random = seededRandom(11);
    const moved = citizens.slice(0, 6).map((citizen) => relocate(citizen, random));
    const renamed = moved
      .slice(0, 3)
      .map((citizen) => ({ ...citizen, full_name: `${citizen.full_name} Mới` }));
    await publish(
      bca,
      citizenSet,
      citizens.map((after) => ({ op: 'CREATE', after, version: 1, occurredAt: T.created })),
    );
    await publish(
      bca,
      citizenSet,
      moved.map((after) => ({ op: 'UPDATE', after, version: 2, occurredAt: T.moved })),
    );
    await publish(
      bca,
      citizenSet,
      renamed.map((after) => ({ op: 'UPDATE', after, version: 3, occurredAt: T.renamed })),
    );
    await publish(bca, citizenSet, [
      { op: 'DELETE', key: citizenKey(1), version: 4, occurredAt: T.deleted },
      { op: 'DELETE', key: citizenKey(2), version: 4, occurredAt: T.deleted },
      { op: 'DELETE', key: citizenKey(11), version: 2, occurredAt: T.deleted },
    ]);
    await publish(failover, citizenSet, [
      { op: 'UPDATE', after: { ...moved[2]!, full_name: 'Late Update' }, version: 2, occurredAt: T.late },
    ]);
    await publish(
      bca,
      citizenSet,
      Array.from({ length: 9 }, (_, index) => ({
        op: 'UPDATE' as const,
        after: { ...renamed[0]!, full_name: `${renamed[0]!.full_name} ${index + 4}` },
        version: index + 4,
        occurredAt: new Date(T.series.getTime() + index * 86_400_000),
      })),
    );

    // BTC: 8 enterprises created (now); enterprise 0 moves its head office.
    await publish(
      btc,
      enterpriseSet,
      enterprises.map((after) => ({ op: 'CREATE', after, version: 1 })),
    );
    await publish(btc, enterpriseSet, [
      {
        op: 'UPDATE',
        after: { ...enterprises[0]!, head_office_address: '1 Tràng Tiền, Hà Nội' },
        version: 2,
      },
    ]);
  });

  afterAll(async () => {
    for (const close of closers.reverse()) await close().catch(() => undefined);
  });

  it('holds the current state of both datasets and every version of every record in the history', async () => {
    sink = await startSink();
    await settle(kafka, groupId, sourceTopics);
    expect(published).toHaveLength(12 + 6 + 3 + 3 + 1 + 9 + 8 + 1);

    for (const dataset of datasets) {
      const newest = new Map<string, ChangeEvent>();
      for (const event of eventsOf(dataset)) {
        const current = newest.get(event.key);
        if (!current || event.version > current.version) newest.set(event.key, event);
      }
      const keyField = quoteIdent(dataset.key.field);
      const { rows } = await pool.query<Record<string, unknown>>(
        `SELECT ${keyField} AS key, _version::int AS version, _deleted AS deleted, _event_id::text AS event_id
           FROM ${table(dataset)} ORDER BY ${keyField}`,
      );
      expect(rows).toEqual(
        [...newest.values()]
          .sort((a, b) => (a.key < b.key ? -1 : 1))
          .map((event) => ({
            key: event.key,
            version: event.version,
            deleted: event.op === 'DELETE',
            event_id: event.eventId,
          })),
      );

      const history = await pool.query<{ event_id: string }>(
        `SELECT _event_id::text AS event_id FROM ${table(dataset, '_history')}`,
      );
      expect(history.rows.map((row) => row.event_id).sort()).toEqual(
        eventsOf(dataset)
          .map((event) => event.eventId)
          .sort(),
      );
    }

    const { rows: names } = await pool.query<{ full_name: string | null }>(
      `SELECT full_name FROM ${table(citizenSet)} WHERE personal_id = $1`,
      [citizenKey(3)],
    );
    expect(names).toEqual([{ full_name: recordOf(citizenSet, citizenKey(3), 2).full_name }]);

    // citizen 2: created, moved, renamed, deleted, and the failover's stale v2 — all kept, in version order
    const changes = await historyOf(pool, citizenSet, citizenKey(2));
    const sent = eventsOf(citizenSet, citizenKey(2)).sort(
      (a, b) => a.version - b.version || a.occurredAt.getTime() - b.occurredAt.getTime(),
    );
    expect(changes.map(({ receivedAt: _, ...change }) => change)).toEqual(
      sent.map((event) => ({
        key: event.key,
        eventId: event.eventId,
        op: event.op,
        version: event.version,
        sourceAgency: 'BCA',
        occurredAt: event.occurredAt,
        traceId: event.traceId,
        provenance: null,
        record: event.after,
      })),
    );
    expect(changes.map((change) => `${change.version}:${change.op}`)).toEqual([
      '1:CREATE',
      '2:UPDATE',
      '2:UPDATE',
      '3:UPDATE',
      '4:DELETE',
    ]);
    expect(changes.every((change) => change.receivedAt instanceof Date)).toBe(true);
    expect(sink.stats).toMatchObject({
      received: published.length,
      historyAdded: published.length,
      rejected: 0,
    });
  });

  it('stateAsOf answers null before creation, the right version between updates, and null after delete', async () => {
    const key = citizenKey(1);
    expect(await stateAsOf(pool, citizenSet, key, before(T.created))).toBeNull();
    expect((await stateAsOf(pool, citizenSet, key, T.created))?.record).toEqual(recordOf(citizenSet, key, 1));
    expect((await stateAsOf(pool, citizenSet, key, before(T.moved)))?.version).toBe(1);
    const moved = await stateAsOf(pool, citizenSet, key, before(T.renamed));
    expect(moved).toMatchObject({
      version: 2,
      op: 'UPDATE',
      occurredAt: T.moved,
      record: recordOf(citizenSet, key, 2),
    });
    expect(moved?.record.permanent_address).not.toBe(recordOf(citizenSet, key, 1).permanent_address);
    expect((await stateAsOf(pool, citizenSet, key, before(T.deleted)))?.record).toEqual(
      recordOf(citizenSet, key, 3),
    );
    expect(await stateAsOf(pool, citizenSet, key, T.deleted)).toBeNull();
    expect(await stateAsOf(pool, citizenSet, key, FAR_FUTURE)).toBeNull();

    // a stale version dated after the delete does not bring citizen 2 back: versions decide, not clocks
    expect(await stateAsOf(pool, citizenSet, citizenKey(2), T.late)).toBeNull();
    expect(await stateAsOf(pool, citizenSet, citizenKey(2), FAR_FUTURE)).toBeNull();
    // versions compare as numbers: 12 is after 9
    expect(await stateAsOf(pool, citizenSet, citizenKey(0), FAR_FUTURE)).toMatchObject({
      version: 12,
      record: recordOf(citizenSet, citizenKey(0), 12),
    });
    expect(await stateAsOf(pool, citizenSet, '001099999999', FAR_FUTURE)).toBeNull();

    // the enterprise, with its decimal, date, array and null fields, as published
    const code = String(enterprises[0]!.enterprise_code);
    expect((await stateAsOf(pool, enterpriseSet, code, new Date()))?.record).toEqual(
      recordOf(enterpriseSet, code, 2),
    );
  });

  it('datasetAsOf lists every record alive at T in key order, pages by key, and as of now matches the current state', async () => {
    const spring = await datasetAsOf(pool, citizenSet, before(T.renamed));
    expect(spring.map((entry) => [entry.key, entry.version])).toEqual(
      citizens
        .map((_, index) => [citizenKey(index), index < 6 ? 2 : 1] as const)
        .sort(([a], [b]) => (a < b ? -1 : 1)),
    );
    expect(await datasetAsOf(pool, citizenSet, before(T.created))).toEqual([]);

    const now = await datasetAsOf(pool, citizenSet, FAR_FUTURE);
    const { rows: current } = await pool.query<{ key: string; version: number }>(
      `SELECT personal_id AS key, _version::int AS version FROM ${table(citizenSet)}
        WHERE NOT _deleted ORDER BY personal_id`,
    );
    expect(current).toHaveLength(9);
    expect(now.map(({ key, version }) => ({ key, version }))).toEqual(current);

    const pages: string[] = [];
    let afterKey: string | undefined;
    for (;;) {
      const page = await datasetAsOf(pool, citizenSet, FAR_FUTURE, { limit: 4, afterKey });
      pages.push(...page.map((entry) => entry.key));
      if (page.length < 4) break;
      afterKey = page.at(-1)!.key;
    }
    expect(pages).toEqual(current.map((row) => row.key));
  });

  it('gives each history column the type of the same column in the current-state table', async () => {
    const columns = async (name: string): Promise<Map<string, string>> => {
      const { rows } = await pool.query<{ column_name: string; type: string }>(
        `SELECT a.attname AS column_name, format_type(a.atttypid, a.atttypmod) AS type
           FROM pg_attribute a WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped`,
        [name],
      );
      return new Map(rows.map((row) => [row.column_name, row.type]));
    };
    for (const dataset of datasets) {
      const current = await columns(table(dataset));
      const history = await columns(table(dataset, '_history'));
      for (const field of dataset.fields) expect(history.get(field.name)).toBe(current.get(field.name));
      expect(Object.fromEntries([...history].filter(([name]) => name.startsWith('_')))).toEqual({
        _seq: 'bigint',
        _event_id: 'uuid',
        _op: 'text',
        _version: 'bigint',
        _source_agency: 'text',
        _occurred_at: 'timestamp with time zone',
        _received_at: 'timestamp with time zone',
        _trace_id: 'text',
        _provenance: 'jsonb',
      });
    }
  });

  it('re-delivering the same events (group reset to offset 0, then the identical bytes produced again) adds no history row and changes no current row, without Redis', async () => {
    const snapshot = async (): Promise<unknown[]> => {
      const result: unknown[] = [];
      for (const dataset of datasets) {
        result.push((await pool.query(`SELECT * FROM ${table(dataset)} ORDER BY 1`)).rows);
        result.push((await pool.query(`SELECT * FROM ${table(dataset, '_history')} ORDER BY _seq`)).rows);
      }
      return result;
    };
    const before = await snapshot();
    await sink.stop();

    const admin = kafka.admin();
    await admin.connect();
    for (const topic of sourceTopics) {
      await admin.setOffsets({
        groupId,
        topic,
        partitions: Array.from({ length: PARTITIONS }, (_, partition) => ({ partition, offset: '0' })),
      });
    }
    await admin.disconnect();

    // no Redis: only the database can recognise the events
    sink = await startSink({ redis: null });
    await settle(kafka, groupId, sourceTopics);
    expect(sink.stats).toMatchObject({
      received: published.length,
      skipped: 0,
      historyAdded: 0,
      duplicates: published.length,
      applied: 0,
      rejected: 0,
    });
    expect(await snapshot()).toEqual(before);

    // a producer retry after a crash: the identical records again, at new offsets
    const raw = await readTopic(kafka, enterpriseTopic, (messages) => messages.length >= 9);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic: enterpriseTopic,
      acks: -1,
      messages: raw.map(({ key, value, headers }): Message => ({ key, value, headers })),
    });
    await producer.disconnect();
    await settle(kafka, groupId, sourceTopics);
    expect(sink.stats).toMatchObject({ historyAdded: 0, duplicates: published.length + 9, applied: 0 });
    expect(await snapshot()).toEqual(before);
  });

  /** A well-formed change event of the test's citizen dataset, changed by `overrides` (after: merged). */
  function citizenEvent(overrides: { after?: Record<string, unknown>; [field: string]: unknown }) {
    const { after: afterOverrides, ...rest } = overrides;
    const after = { ...sampleCitizens(1, 31337)[0]!, ...afterOverrides };
    return {
      eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
      dataset: citizenSet.id,
      op: 'UPDATE',
      key: String(after.personal_id),
      version: 1,
      occurredAt: T.series,
      sourceAgency: 'BCA',
      traceId: 'hostile',
      after,
      ...rest,
    };
  }

  it('sends undecodable, hostile and foreign records to lt.dlq.ngdb with reason headers, and the valid events after them still land', async () => {
    const [sample] = await readTopic(kafka, citizenTopic, (messages) => messages.length > 0);
    const [enterprise] = await readTopic(kafka, enterpriseTopic, (messages) => messages.length > 0);
    const valueSchemaId = await registry.getLatestSchemaId(subjects.value(citizenTopic));
    const bad: { value: Buffer; code: string; detail: RegExp }[] = [
      { value: Buffer.from('not avro'), code: 'LT_DECODE_FAILED', detail: /Confluent wire format/ },
      { value: Buffer.from([0, 1]), code: 'LT_DECODE_FAILED', detail: /Confluent wire format/ },
      {
        value: Buffer.from([0, 0x7f, 0xff, 0xff, 0xf0, 1, 2, 3]),
        code: 'LT_SCHEMA_UNKNOWN',
        detail: /does not know schema id 2147483632/,
      },
      {
        value: Buffer.concat([sample!.value!, Buffer.from([0x42])]),
        code: 'LT_DECODE_FAILED',
        detail: /does not decode with schema/,
      },
      {
        value: Buffer.concat([Buffer.from([0, 0, 0, 0, 0]), Buffer.from([0xff, 0xff, 0xff])]),
        code: 'LT_SCHEMA_UNKNOWN',
        detail: /not a valid registry id/,
      },
      // another dataset's schema: refused before the schema is even fetched
      {
        value: enterprise!.value!,
        code: 'LT_SCHEMA_NOT_OF_TOPIC',
        detail: /is not registered under lt\.src\./,
      },
      // a 2-billion-item array in three bytes: avsc alone allocates until the process dies
      {
        value: cutAndCraft(
          await registry.encode(valueSchemaId, citizenEvent({ after: { ethnicity: CUT_HERE } })),
          HUGE_ARRAY_BLOCK,
        ),
        code: 'LT_DECODE_FAILED',
        detail: /after\.nationalities: an array block declares 2147483647 items/,
      },
      {
        value: await registry.encode(valueSchemaId, citizenEvent({ sourceAgency: 'BTC' })),
        code: 'LT_NOT_OWNER',
        detail: /BTC published to .*, whose owner is BCA/,
      },
      {
        value: await registry.encode(valueSchemaId, citizenEvent({ key: '001099000001' })),
        code: 'LT_RECORD_INVALID',
        detail: /the record's personal_id is not the event key$/,
      },
      {
        value: await registry.encode(valueSchemaId, citizenEvent({ dataset: 'population.other' })),
        code: 'LT_RECORD_INVALID',
        detail: /event for dataset "population.other" on the topic of/,
      },
    ];
    expect(sample!.value!.readUInt32BE(1)).toBe(valueSchemaId);

    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (let partition = 0; partition < PARTITIONS; partition++) {
      await producer.send({
        topic: citizenTopic,
        acks: -1,
        messages: bad.map(({ value }) => ({ partition, key: `poison-${partition}`, value })),
      });
    }
    await producer.disconnect();
    const newcomers = sampleCitizens(6, 4049).filter(
      (citizen) => !citizens.some((known) => known.personal_id === citizen.personal_id),
    );
    await publish(
      bca,
      citizenSet,
      newcomers.map((after) => ({ op: 'CREATE', after, version: 1, occurredAt: T.series })),
    );
    await settle(kafka, groupId, sourceTopics);

    for (const citizen of newcomers) {
      expect(await stateAsOf(pool, citizenSet, String(citizen.personal_id), FAR_FUTURE)).toMatchObject({
        version: 1,
        record: { full_name: citizen.full_name },
      });
    }
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM ${table(citizenSet)} WHERE personal_id = ANY($1)`,
      [newcomers.map((citizen) => citizen.personal_id)],
    );
    expect(rows[0]!.n).toBe(newcomers.length);

    const ours = (messages: KafkaMessage[]): KafkaMessage[] =>
      messages.filter((message) => header(message.headers, 'lt-source-topic') === citizenTopic);
    const dead = ours(
      await readTopic(
        kafka,
        topics.deadLetter('ngdb'),
        (messages) => ours(messages).length >= bad.length * PARTITIONS,
      ),
    );
    expect(dead).toHaveLength(bad.length * PARTITIONS);
    for (const message of dead) {
      const which = bad.find(({ value }) => value.equals(message.value!));
      expect(which, `an unexpected DLQ record: ${message.value?.toString('hex')}`).toBeDefined();
      expect(header(message.headers, 'lt-error-code')).toBe(which!.code);
      expect(header(message.headers, 'lt-error-stage')).toBe('ngdb');
      expect(header(message.headers, 'lt-error-detail')).toMatch(which!.detail);
      expect(header(message.headers, 'lt-source-partition')).toMatch(/^[0-2]$/);
      expect(header(message.headers, 'lt-source-offset')).toMatch(/^\d+$/);
      expect(message.key?.toString()).toBe(`poison-${header(message.headers, 'lt-source-partition')}`);
    }
    expect(sink.stats.rejected).toBe(bad.length * PARTITIONS);
  });

  it('sends a record PostgreSQL cannot store (a NUL character) to the DLQ, and the next version of that record still lands', async () => {
    const citizen = sampleCitizens(1, 9001)[0]!;
    const key = String(citizen.personal_id);
    const [poisoned] = await publish(bca, citizenSet, [
      { op: 'CREATE', after: { ...citizen, permanent_address: 'Số 1\u0000 Hàng Bài' }, version: 1 },
      { op: 'UPDATE', after: citizen, version: 2 },
    ]);
    await settle(kafka, groupId, sourceTopics);

    expect((await historyOf(pool, citizenSet, key)).map((change) => change.version)).toEqual([2]);
    expect(await stateAsOf(pool, citizenSet, key, FAR_FUTURE)).toMatchObject({ version: 2, record: citizen });
    // the Avro body carries the eventId as text
    const isPoisoned = (message: KafkaMessage): boolean =>
      message.value?.includes(poisoned!.eventId) ?? false;
    const dead = await readTopic(kafka, topics.deadLetter('ngdb'), (messages) => messages.some(isPoisoned));
    const record = dead.find(isPoisoned);
    expect(header(record?.headers, 'lt-error-code')).toBe('LT_RECORD_INVALID');
    expect(header(record?.headers, 'lt-error-detail')).toMatch(/SQLSTATE 22/);
  });

  it('holds batches back while the registry is unreachable instead of dead-lettering them, and catches up when it returns', async () => {
    const outagePool = (await testPool()).pool;
    const live = createRegistryClient({ url: registryUrl, ...registryIdentity });
    const unreachable = createRegistryClient({ url: 'https://127.0.0.1:1', ...registryIdentity });
    let down = true;
    // the sink asks the registry only for writer schemas by id, and which subjects an id is registered under
    const flaky = {
      getSchema: (id: number) => (down ? unreachable : live).getSchema(id),
      subjectsOfSchema: (id: number) => (down ? unreachable : live).subjectsOfSchema(id),
    } as unknown as SchemaRegistry;
    const outage = await startSink({
      pool: outagePool,
      registry: flaky,
      redis: null,
      groupId: uniqueName('lt.ngdb.outage-'),
    });
    await expect.poll(() => outage.stats.failedBatches, { timeout: 30_000 }).toBeGreaterThan(0);
    expect(outage.stats).toMatchObject({ rejected: 0, historyAdded: 0 });
    for (const topic of sourceTopics) expect(await groupLag(kafka, outage.groupId, topic)).toBeGreaterThan(0);

    down = false;
    await settle(kafka, outage.groupId, sourceTopics);
    const count = async (db: Pool, dataset: Dataset): Promise<number> =>
      (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table(dataset, '_history')}`)).rows[0]!
        .n;
    for (const dataset of datasets) expect(await count(outagePool, dataset)).toBe(await count(pool, dataset));
    expect(outage.stats.rejected).toBe(sink.stats.rejected);
  });

  it('rebuilds from offset 0 into an empty schema to the same current state and history, although Redis remembers every event', async () => {
    const rebuilt = (await testPool()).pool;
    const rebuild = await startSink({ pool: rebuilt, groupId: uniqueName('lt.ngdb.rebuild-') });
    await settle(kafka, rebuild.groupId, sourceTopics);
    expect(rebuild.stats.skipped).toBe(0);

    for (const dataset of datasets) {
      const currentSql = `SELECT * FROM ${table(dataset)} ORDER BY 1`;
      const historySql = `SELECT * FROM ${table(dataset, '_history')} ORDER BY _event_id`;
      const strip = (rows: Record<string, unknown>[], ...names: string[]): unknown[] =>
        rows.map((row) => Object.fromEntries(Object.entries(row).filter(([name]) => !names.includes(name))));
      expect(strip((await rebuilt.query(currentSql)).rows, '_committed_at')).toEqual(
        strip((await pool.query(currentSql)).rows, '_committed_at'),
      );
      const history = strip((await rebuilt.query(historySql)).rows, '_seq', '_received_at');
      expect(history.length).toBeGreaterThan(0);
      expect(history).toEqual(strip((await pool.query(historySql)).rows, '_seq', '_received_at'));
    }
  });
});
