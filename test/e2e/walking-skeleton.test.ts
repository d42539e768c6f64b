import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerGroups, topics } from '../../infra/kafka/topics.ts';
import { ensureTopics, waitForGroup } from '../../infra/kafka/admin.ts';
import { Deduplicator } from '../../consumers/sink/dedup.ts';
import { Sink } from '../../consumers/sink/sink.ts';
import type { Publisher } from '../../producers/publisher/index.ts';
import { type Change } from '../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';
import { loadDictionary } from '../../schemas/model/dictionary.ts';
import { isolatedDataset } from '../helpers/datasets.ts';
import {
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  testRegistry,
  uniqueName,
} from '../helpers/services.ts';

const CITIZENS = 300;

describe('walking skeleton: BCA publishes citizens, a sink materializes them into PostgreSQL', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const topic = topics.source(dataset.id);
  const expected = new Map<string, { version: number; after: DatasetRecord | null }>();
  let publisher: Publisher;
  // A second Agent Node of BCA with its own ledger, as after a failover that lost the first one's state:
  // the only way versions of one key reach the topic out of order once the source checks them.
  let failover: Publisher;
  let sink: Sink;

  beforeAll(async () => {
    const registry = await testRegistry();
    const { pool } = await testPool();
    const redis = await testRedis();
    await ensureTopics(kafka, [{ topic, partitions: 3 }]);
    publisher = await testPublisher(registry.client, dictionary, 'BCA');
    failover = await testPublisher(registry.client, dictionary, 'BCA');
    sink = new Sink({
      kafka,
      registry: registry.client,
      pool,
      dataset,
      topic,
      groupId: consumerGroups.sink(uniqueName('skeleton-')),
      dedup: new Deduplicator(redis, 'skeleton', 3600, log),
      log,
    });
  });

  afterAll(async () => {
    await sink?.stop();
  });

  const record = (change: Change): void => {
    const key = change.op === 'DELETE' ? change.key : String(change.after.personal_id);
    const current = expected.get(key);
    if (!current || change.version > current.version) {
      expected.set(key, { version: change.version, after: change.op === 'DELETE' ? null : change.after });
    }
  };
  const publish = async (changes: Change[], via: Publisher = publisher): Promise<void> => {
    const result = await via.publishBatch(dataset.id, changes);
    expect(result.rejected).toBe(0);
    changes.forEach(record);
  };

  it('publishes creates, updates (some out of order) and deletes', async () => {
    const random = seededRandom(7);
    const citizens = sampleCitizens(CITIZENS, 2025);
    await publish(citizens.map((after) => ({ op: 'CREATE', after, version: 1 })));

    // 150 move house (v2); 50 of them also change name (v3), and v3 is sent before v2 (v2 by the failover node).
    const moved = citizens.slice(0, 150).map((citizen) => relocate(citizen, random));
    const renamed = moved
      .slice(0, 50)
      .map((citizen) => ({ ...citizen, full_name: `${citizen.full_name} Mới` }));
    await publish(renamed.map((after) => ({ op: 'UPDATE', after, version: 3 })));
    await publish(
      moved.map((after) => ({ op: 'UPDATE', after, version: 2 })),
      failover,
    );

    // 40 deletions (a wrong personal ID corrected), 20 of them among the moved citizens; then a late v2
    // update for a deleted record that must not bring it back.
    const deleted = [...citizens.slice(130, 150), ...citizens.slice(280, 300)];
    await publish(deleted.map((citizen) => ({ op: 'DELETE', key: String(citizen.personal_id), version: 4 })));
    await publish(
      [{ op: 'UPDATE', after: { ...citizens[299]!, full_name: 'Late Update' }, version: 2 }],
      failover,
    );
  });

  it('ends with the PostgreSQL table equal to the expected final state', async () => {
    await sink.start();
    const lag = await waitForGroup(kafka, sink['options'].groupId, topic, 60_000);
    expect(lag).toBe(0);

    const { rows } = await sink['options'].pool.query<Record<string, unknown>>(
      `SELECT personal_id, full_name, to_char(birth_date, 'YYYY-MM-DD') AS birth_date, gender, province_code,
              commune_code, permanent_address, ethnicity, _version, _deleted
         FROM ${sink.table.name} ORDER BY personal_id`,
    );
    const want = [...expected.entries()]
      .sort(([a], [b]) => (a < b ? -1 : 1))
      .map(([key, { version, after }]) => ({
        personal_id: key,
        full_name: after?.full_name ?? null,
        birth_date: after?.birth_date ?? null,
        gender: after?.gender ?? null,
        province_code: after?.province_code ?? null,
        commune_code: after?.commune_code ?? null,
        permanent_address: after?.permanent_address ?? null,
        ethnicity: after?.ethnicity ?? null,
        _version: String(version),
        _deleted: after === null,
      }));
    expect(rows).toHaveLength(CITIZENS);
    expect(rows).toEqual(want);
    expect(rows.filter((row) => row._deleted)).toHaveLength(40);
    expect(rows.filter((row) => String(row.full_name).endsWith(' Mới'))).toHaveLength(50);
    expect(sink.stats.rejected).toBe(0);
  });
});
