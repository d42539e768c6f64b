import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deduplicator } from '../../../consumers/sink/dedup.ts';
import { Sink } from '../../../consumers/sink/sink.ts';
import { isLtError } from '../../../infra/errors.ts';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import { Publisher, type Change, type VersionLedger } from '../../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../../producers/sample/citizens.ts';
import {
  runSnapshot,
  type SnapshotOptions,
  type SnapshotProgress,
} from '../../../producers/snapshot/index.ts';
import type { ChangeEvent, DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../../schemas/model/dataset.ts';
import { loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  log,
  testAgentDb,
  testKafka,
  testPool,
  testRedis,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

// East of Greenwich, a `date` column read as a JS Date at local midnight is the day before in UTC: the snapshot
// must carry the date PostgreSQL stores, whatever the process's time zone.
process.env.TZ = 'Asia/Ho_Chi_Minh';

/** A citizen register as an agency keeps it: one column per field, a version, and a column of its own. */
const CITIZEN_TABLE = `(
  personal_id text PRIMARY KEY, full_name text NOT NULL, birth_date date NOT NULL, gender text NOT NULL,
  birth_registration_province text NOT NULL, province_code text NOT NULL, commune_code text NOT NULL,
  permanent_address text, ethnicity text, nationalities text[] NOT NULL, death_date date,
  version bigint NOT NULL, internal_note text DEFAULT 'not in the dictionary'
)`;

describe('snapshot of an existing register', () => {
  const kafka = testKafka();
  let dictionary: Dictionary = loadDictionary();
  const isolate = (id: string): Dataset => {
    const isolated = isolatedDataset(dictionary, id);
    dictionary = isolated.dictionary;
    return isolated.dataset;
  };
  const citizens = {
    full: isolate('population.citizen'),
    resume: isolate('population.citizen'),
    restart: isolate('population.citizen'),
    handover: isolate('population.citizen'),
    refused: isolate('population.citizen'),
    checks: isolate('population.citizen'),
  };
  const parcels = isolate('land.parcel');
  let registry: SchemaRegistry;
  let publisher: Publisher;
  let landPublisher: Publisher;
  let agent: Pool;
  let ledger: VersionLedger;
  let source: Pool;

  beforeAll(async () => {
    registry = (await testRegistry()).client;
    const agentDb = await testAgentDb();
    agent = agentDb.pool;
    ledger = agentDb.ledger;
    source = (await testPool()).pool;
    await ensureTopics(
      kafka,
      [...Object.values(citizens), parcels].map((dataset) => ({
        topic: topics.source(dataset.id),
        partitions: 3,
      })),
    );
    await publishDictionary(registry, dictionary);
    publisher = new Publisher({ kafka, registry, dictionary, agency: 'BCA', ledger, log });
    landPublisher = new Publisher({ kafka, registry, dictionary, agency: 'BNNMT', ledger, log });
    await publisher.connect();
    await landPublisher.connect();
  });

  afterAll(async () => {
    await publisher?.close();
    await landPublisher?.close();
  });

  /** Creates a citizen table holding `records`, each at the version `versionOf` gives it. */
  async function citizenTable(
    records: DatasetRecord[],
    versionOf: (index: number) => number = () => 1,
    definition = CITIZEN_TABLE,
  ): Promise<string> {
    const table = uniqueName('citizens_');
    await source.query(`CREATE TABLE ${table} ${definition}`);
    const rows = records.map((record, index) => ({ ...record, version: versionOf(index) }));
    await source.query(
      `INSERT INTO ${table} (personal_id, full_name, birth_date, gender, birth_registration_province,
         province_code, commune_code, permanent_address, ethnicity, nationalities, death_date, version)
       SELECT r.personal_id, r.full_name, r.birth_date, r.gender, r.birth_registration_province, r.province_code,
              r.commune_code, r.permanent_address, r.ethnicity,
              ARRAY(SELECT jsonb_array_elements_text(r.nationalities)), r.death_date, r.version
         FROM jsonb_to_recordset($1::jsonb) AS r(personal_id text, full_name text, birth_date date, gender text,
              birth_registration_province text, province_code text, commune_code text, permanent_address text,
              ethnicity text, nationalities jsonb, death_date date, version bigint)`,
      [JSON.stringify(rows)],
    );
    return table;
  }

  function options(dataset: Dataset, table: string, more: Partial<SnapshotOptions> = {}): SnapshotOptions {
    return { publisher, dataset, source: { pool: source, table }, checkpoint: agent, log, ...more };
  }

  /** How many records the topic holds (every partition, from its start). */
  async function topicCount(dataset: Dataset): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const offsets = await admin.fetchTopicOffsets(topics.source(dataset.id));
      return offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0);
    } finally {
      await admin.disconnect();
    }
  }

  /** Decodes the topic's first `count` events with the registry. */
  async function readEvents(dataset: Dataset, count: number): Promise<ChangeEvent[]> {
    const consumer = kafka.consumer({ groupId: uniqueName('snapshot-reader-') });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.source(dataset.id), fromBeginning: true });
    const events: ChangeEvent[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`read ${events.length} of ${count} events`)), 30_000);
        consumer
          .run({
            eachBatch: async ({ batch }) => {
              for (const message of batch.messages) {
                if (message.value) events.push((await registry.decode(message.value)) as ChangeEvent);
              }
              if (events.length >= count) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
    return events;
  }

  async function checkpointOf(dataset: Dataset, table: string) {
    const { rows } = await agent.query<{
      last_key: string | null;
      published: string;
      finished_at: Date | null;
    }>(
      'SELECT last_key, published, finished_at FROM lt_snapshot_checkpoint WHERE dataset = $1 AND source = $2',
      [dataset.id, table],
    );
    return rows[0];
  }

  const byKey = (a: { key: string }, b: { key: string }): number => (a.key < b.key ? -1 : 1);

  it('publishes exactly one SNAPSHOT event per row, records a finished checkpoint and reports progress', async () => {
    const dataset = citizens.full;
    const records = sampleCitizens(3000, 11);
    const versionOf = (index: number): number => 1 + (index % 4);
    const table = await citizenTable(records, versionOf);
    const progress: SnapshotProgress[] = [];

    const result = await runSnapshot(
      options(dataset, table, { batchSize: 500, onProgress: (p) => progress.push(p) }),
    );

    expect(result).toMatchObject({
      outcome: 'finished',
      resumedAfter: null,
      total: 3000,
      read: 3000,
      published: 3000,
      publishedOverall: 3000,
      superseded: 0,
      refused: 0,
      refusals: [],
    });
    expect(await topicCount(dataset)).toBe(3000);
    const events = await readEvents(dataset, 3000);
    const want = records
      .map((after, index) => ({
        key: String(after.personal_id),
        op: 'SNAPSHOT',
        version: versionOf(index),
        after,
      }))
      .sort(byKey);
    const got = events.map(({ key, op, version, after }) => ({ key, op, version, after })).sort(byKey);
    expect(got).toEqual(want); // dates as stored (not shifted a day by the time zone), arrays, nulls

    const keys = want.map((row) => row.key);
    const checkpoint = await checkpointOf(dataset, table);
    expect(checkpoint).toMatchObject({ last_key: keys[keys.length - 1], published: '3000' });
    expect(checkpoint?.finished_at).toBeInstanceOf(Date);

    expect(progress.map((p) => p.done)).toEqual([0, 500, 1000, 1500, 2000, 2500, 3000]);
    expect(progress.every((p) => p.total === 3000)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ done: 3000, etaSeconds: 0 });
    expect(progress.at(-1)?.ratePerSecond).toBeGreaterThan(0);
  });

  it('resumes an interrupted snapshot after its checkpoint’s last key, re-reading nothing, and finishes', async () => {
    const dataset = citizens.resume;
    const records = sampleCitizens(1000, 12);
    const keys = records.map((record) => String(record.personal_id)).sort();
    const table = await citizenTable(records);
    const controller = new AbortController();

    const first = await runSnapshot(
      options(dataset, table, {
        batchSize: 100,
        signal: controller.signal,
        onProgress: ({ done }) => {
          if (done >= 300) controller.abort();
        },
      }),
    );
    expect(first).toMatchObject({ outcome: 'aborted', read: 300, published: 300 });
    expect(await checkpointOf(dataset, table)).toEqual({
      last_key: keys[299],
      published: '300',
      finished_at: null,
    });
    expect(await topicCount(dataset)).toBe(300);

    // a new process: a new publisher on the same agency database
    const restarted = new Publisher({ kafka, registry, dictionary, agency: 'BCA', ledger, log });
    await restarted.connect();
    const progress: SnapshotProgress[] = [];
    try {
      const second = await runSnapshot({
        ...options(dataset, table, { batchSize: 100, onProgress: (p) => progress.push(p) }),
        publisher: restarted,
      });
      expect(second).toMatchObject({
        outcome: 'finished',
        resumedAfter: keys[299],
        total: 1000,
        read: 700,
        published: 700,
        publishedOverall: 1000,
        superseded: 0,
      });
    } finally {
      await restarted.close();
    }
    expect(progress[0]?.done).toBe(300);
    expect(progress.at(-1)?.done).toBe(1000);
    expect(await topicCount(dataset)).toBe(1000);
    const events = await readEvents(dataset, 1000);
    expect(new Set(events.map((event) => event.key)).size).toBe(1000);
    expect((await checkpointOf(dataset, table))?.finished_at).toBeInstanceOf(Date);

    const third = await runSnapshot(options(dataset, table, { batchSize: 100 }));
    expect(third).toMatchObject({ outcome: 'already-finished', read: 0, published: 0 });
  });

  it('re-reads every row on restart but publishes no version twice', async () => {
    const dataset = citizens.restart;
    const table = await citizenTable(sampleCitizens(300, 13));
    expect(await runSnapshot(options(dataset, table, { batchSize: 100 }))).toMatchObject({ published: 300 });
    await source.query(`UPDATE ${table} SET full_name = full_name || ' Mới', version = 2
                          WHERE personal_id IN (SELECT personal_id FROM ${table} ORDER BY personal_id LIMIT 10)`);

    const again = await runSnapshot(options(dataset, table, { batchSize: 100, restart: true }));

    expect(again).toMatchObject({
      outcome: 'finished',
      resumedAfter: null,
      read: 300,
      published: 10,
      publishedOverall: 10,
      superseded: 290,
      refused: 0,
    });
    expect(await topicCount(dataset)).toBe(310);
  });

  it('loses no live change made during the hand-over: the materialized table equals the source', async () => {
    const dataset = citizens.handover;
    const records = sampleCitizens(600, 14);
    const table = await citizenTable(records);
    const current = new Map(records.map((record) => [String(record.personal_id), { record, version: 1 }]));
    const keys = [...current.keys()].sort();
    const PAGE = 25;
    const PAGES = keys.length / PAGE;
    const random = seededRandom(99);
    const deferred: Change[] = []; // committed at the source, relayed only after the snapshot (a lagging outbox)
    const deleted = new Set<string>();
    let expectedSuperseded = 0;
    let expectedRead = keys.length;

    /** Changes one row at the source as the agency's system would: the business change and a higher version. */
    const change = async (key: string): Promise<Change> => {
      const row = current.get(key)!;
      const record: DatasetRecord = {
        ...relocate(row.record, random),
        full_name: `${String(row.record.full_name)} (${row.version + 1})`,
      };
      const version = row.version + 1;
      await source.query(
        `UPDATE ${table} SET full_name = $2, province_code = $3, commune_code = $4, permanent_address = $5,
           version = $6 WHERE personal_id = $1`,
        [key, record.full_name, record.province_code, record.commune_code, record.permanent_address, version],
      );
      current.set(key, { record, version });
      return { op: 'UPDATE', after: record, version };
    };
    const live = async (item: Change): Promise<void> => {
      await publisher.publish(dataset.id, item);
    };
    const keyAt = (page: number, slot: number): string | undefined =>
      page >= 0 && page < PAGES ? keys[page * PAGE + slot] : undefined;

    // Runs right after the snapshot read page `page` and before it publishes it.
    let page = -1;
    const onPageRead = async (pageKeys: string[]): Promise<void> => {
      if (pageKeys.length === 0) return;
      page += 1;
      expect(pageKeys).toEqual(keys.slice(page * PAGE, (page + 1) * PAGE).filter((key) => !deleted.has(key)));
      // read at v, changed to v+1 and relayed before the snapshot publishes v: the snapshot's v is superseded
      await live(await change(keyAt(page, 1)!));
      expectedSuperseded += 1;
      // read at v, changed, relayed late: the live v+1 arrives after the snapshot's v
      deferred.push(await change(keyAt(page, 2)!));
      // already published by the snapshot, changed twice since
      const behind = keyAt(page - 2, 5);
      if (behind) {
        await live(await change(behind));
        await live(await change(behind));
      }
      // not read yet, changed and relayed at once: the snapshot reads v+1, already published
      const ahead = keyAt(page + 2, 7);
      if (ahead) {
        await live(await change(ahead));
        expectedSuperseded += 1;
      }
      // not read yet, changed, relayed late: the snapshot publishes v+1 first, the live v+1 is then stale
      const aheadLate = keyAt(page + 3, 9);
      if (aheadLate) deferred.push(await change(aheadLate));
      if (page === 8) {
        // deleted behind and ahead of the cursor (ahead: on the last page, so that no page boundary moves)
        for (const key of [keyAt(page - 2, 11)!, keyAt(PAGES - 1, 11)!]) {
          const version = current.get(key)!.version + 1;
          await source.query(`DELETE FROM ${table} WHERE personal_id = $1`, [key]);
          current.delete(key);
          deleted.add(key);
          await live({ op: 'DELETE', key, version });
        }
        expectedRead -= 1; // the one ahead is never read
      }
    };
    // The snapshot's page query, observed: every query of the source pool goes through, page reads call the hook.
    const observed = new Proxy(source, {
      get(target, property) {
        if (property === 'query') {
          return async (...args: unknown[]) => {
            const query = target.query.bind(target) as (
              ...a: unknown[]
            ) => Promise<{ rows: { personal_id: string }[] }>;
            const result = await query(...args);
            const text = typeof args[0] === 'string' ? args[0] : (args[0] as { text: string }).text;
            if (/ORDER BY .* LIMIT/s.test(text)) await onPageRead(result.rows.map((row) => row.personal_id));
            return result;
          };
        }
        const value: unknown = Reflect.get(target, property, target);
        return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
      },
    });

    const result = await runSnapshot({
      ...options(dataset, table, { batchSize: PAGE }),
      source: { pool: observed, table },
    });
    expect(result).toMatchObject({
      outcome: 'finished',
      read: expectedRead,
      refused: 0,
      superseded: expectedSuperseded,
    });
    expect(result.published).toBe(expectedRead - expectedSuperseded);

    // the lagging relay catches up: changes the snapshot already carried at the same version are refused
    const relayed = await publisher.publishBatch(dataset.id, deferred, { partial: true });
    const stale = relayed.outcomes.filter((outcome) => outcome.status === 'rejected');
    expect(
      stale.every((outcome) => outcome.status === 'rejected' && outcome.code === 'LT_VERSION_STALE'),
    ).toBe(true);
    expect(stale).toHaveLength(PAGES - 3); // one per page that had a page three ahead
    expect(relayed.accepted).toBe(PAGES); // the rows changed right after they were read

    const sinkDb = await testPool();
    const sink = new Sink({
      kafka,
      registry,
      pool: sinkDb.pool,
      dataset,
      topic: topics.source(dataset.id),
      groupId: consumerGroups.sink(uniqueName('handover-')),
      dedup: new Deduplicator(await testRedis(), 'handover', 3600, log),
      log,
    });
    try {
      await sink.start();
      expect(await waitForGroup(kafka, sink['options'].groupId, topics.source(dataset.id), 30_000)).toBe(0);
    } finally {
      await sink.stop();
    }
    const { rows: materialized } = await sinkDb.pool.query(
      `SELECT personal_id, full_name, province_code, commune_code, _version::int AS version, _deleted AS deleted
         FROM ${sink.table.name} ORDER BY personal_id`,
    );
    const { rows: truth } = await source.query(
      `SELECT personal_id, full_name, province_code, commune_code, version::int AS version, false AS deleted
         FROM ${table} ORDER BY personal_id`,
    );
    const gone = [...deleted].map((key) => ({
      personal_id: key,
      full_name: null,
      province_code: null,
      commune_code: null,
      version: 2,
      deleted: true,
    }));
    expect(materialized).toEqual(
      [...truth, ...gone].sort((a, b) => (a.personal_id < b.personal_id ? -1 : 1)),
    );
    expect(truth.filter((row) => row.version > 1).length).toBeGreaterThan(PAGES * 3); // changes did happen
  });

  it('reports a refused row with its reason and still publishes the rest', async () => {
    const dataset = citizens.refused;
    const records = sampleCitizens(200, 15);
    const keys = records.map((record) => String(record.personal_id)).sort();
    const contradicting = records.find((record) => record.personal_id === keys[50])!;
    const year = Number(String(contradicting.birth_date).slice(0, 4)) + 1;
    contradicting.birth_date = `${year}${String(contradicting.birth_date).slice(4)}`; // the ID says otherwise
    const unversioned = keys[120]!;
    // UNIQUE, not PRIMARY KEY: a row without a key can exist
    const table = await citizenTable(
      records,
      (index) => (records[index]!.personal_id === unversioned ? 0 : 1),
      CITIZEN_TABLE.replace('personal_id text PRIMARY KEY', 'personal_id text UNIQUE'),
    );
    await source.query(
      `INSERT INTO ${table} (personal_id, full_name, birth_date, gender, birth_registration_province, province_code,
         commune_code, nationalities, version)
       VALUES (NULL, 'Không Có Số', '1990-01-01', 'M', '01', '01', '00004', '{VN}', 1)`,
    );

    const result = await runSnapshot(options(dataset, table, { batchSize: 64 }));

    expect(result).toMatchObject({
      outcome: 'finished',
      total: 201,
      refused: 3,
      superseded: 0,
      published: 198,
    });
    expect(result.refusals).toHaveLength(3);
    expect(result.refusals).toEqual(
      expect.arrayContaining([
        {
          key: null,
          code: 'LT_RECORD_INVALID',
          message: expect.stringMatching(/1 row\(s\) have no personal_id/),
        },
        {
          key: keys[50],
          code: 'LT_RECORD_INVALID',
          message: expect.stringMatching(new RegExp(`^personal_id: ${keys[50]}: .*birth`)),
        },
        {
          key: unversioned,
          code: 'LT_RECORD_INVALID',
          message: expect.stringMatching(/version must be ≥ 1/),
        },
      ]),
    );
    expect(await topicCount(dataset)).toBe(198);
    expect((await checkpointOf(dataset, table))?.finished_at).toBeInstanceOf(Date);
  });

  it('refuses a source that lacks a field’s column or holds a key twice, before publishing anything', async () => {
    const dataset = citizens.checks;
    const [one, two] = sampleCitizens(2, 16);
    const missing = uniqueName('citizens_');
    await source.query(`CREATE TABLE ${missing} AS SELECT personal_id, full_name, 1 AS version FROM (VALUES ('a', 'b'))
                          AS v(personal_id, full_name)`);
    const twice = await citizenTable(
      [one!, two!, { ...one!, full_name: 'Bản Sao' }],
      () => 1,
      CITIZEN_TABLE.replace('personal_id text PRIMARY KEY', 'personal_id text'),
    );

    const lacking = await runSnapshot(options(dataset, missing)).catch((error: unknown) => error);
    expect(isLtError(lacking, 'LT_CONFIG_INVALID')).toBe(true);
    expect((lacking as Error).message).toMatch(/lacks column\(s\) birth_date, gender, .*death_date/);
    const duplicated = await runSnapshot(options(dataset, twice)).catch((error: unknown) => error);
    expect(isLtError(duplicated, 'LT_CONFIG_INVALID')).toBe(true);
    expect((duplicated as Error).message).toContain(
      `more than one row for key(s) ${String(one!.personal_id)}`,
    );
    const unknown = await runSnapshot(options(dataset, 'no_such_table')).catch((error: unknown) => error);
    expect((unknown as Error).message).toMatch(/does not exist/);
    expect(await topicCount(dataset)).toBe(0);
  });

  it('reads numeric, bigint, jsonb and date columns as the dictionary’s record shapes', async () => {
    const table = uniqueName('parcels_');
    await source.query(`CREATE TABLE ${table} (
      parcel_id text PRIMARY KEY, commune_code text, map_sheet_no bigint, parcel_no integer, area_m2 numeric(12,1),
      land_use_purpose text, use_term_until date, holders jsonb, certificate_no text, rev bigint)`);
    await source.query(
      `INSERT INTO ${table} VALUES
        ('00004-12-345', '00004', 12, 345, 1250.5, 'ODT', '2064-07-01',
         '[{"holder_id": "001090012345", "holder_name": "Nguyễn Văn An", "share_percent": 50},
           {"holder_id": "001190054321", "holder_name": "Trần Thị Hoa", "share_percent": 50}]', 'CS 012345', 3),
        ('00008-3-7', '00008', 3, 7, 80, 'LUC', NULL,
         '[{"holder_id": "0100109106", "holder_name": "Công ty TNHH Minh Long", "share_percent": 100}]', NULL, 1)`,
    );

    const result = await runSnapshot({
      ...options(parcels, table),
      publisher: landPublisher,
      source: { pool: source, table, versionColumn: 'rev' },
    });

    expect(result).toMatchObject({ outcome: 'finished', published: 2, refused: 0 });
    const events = (await readEvents(parcels, 2)).sort(byKey);
    expect(events.map(({ key, version, after }) => ({ key, version, after }))).toEqual([
      {
        key: '00004-12-345',
        version: 3,
        after: {
          parcel_id: '00004-12-345',
          commune_code: '00004',
          map_sheet_no: 12,
          parcel_no: 345,
          area_m2: '1250.5',
          land_use_purpose: 'ODT',
          use_term_until: '2064-07-01',
          holders: [
            { holder_id: '001090012345', holder_name: 'Nguyễn Văn An', share_percent: '50.00' },
            { holder_id: '001190054321', holder_name: 'Trần Thị Hoa', share_percent: '50.00' },
          ],
          certificate_no: 'CS 012345',
        },
      },
      {
        key: '00008-3-7',
        version: 1,
        after: {
          parcel_id: '00008-3-7',
          commune_code: '00008',
          map_sheet_no: 3,
          parcel_no: 7,
          area_m2: '80.0',
          land_use_purpose: 'LUC',
          use_term_until: null,
          holders: [
            { holder_id: '0100109106', holder_name: 'Công ty TNHH Minh Long', share_percent: '100.00' },
          ],
          certificate_no: null,
        },
      },
    ]);
  });
});
