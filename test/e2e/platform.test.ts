import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { NgdbSink } from '../../consumers/ngdb/index.ts';
import { stateAsOf } from '../../schemas/postgres/index.ts';
import { startSubscription, type RunningSubscription } from '../../consumers/subscription/index.ts';
import { ensureTopics, groupLag } from '../../infra/kafka/admin.ts';
import { topics } from '../../infra/kafka/topics.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { AgreementStore } from '../../platform/agreements/index.ts';
import { Coordinator } from '../../platform/coordinator/index.ts';
import type { Publisher } from '../../producers/publisher/index.ts';
import { type Change } from '../../producers/publisher/index.ts';
import { SAMPLE_RESIDENCES, sampleCitizens } from '../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../producers/sample/enterprises.ts';
import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import {
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  testRegistry,
  uniqueName,
} from '../helpers/services.ts';

/** The real dictionary with citizen and enterprise datasets under unique ids, so this test owns its topics. */
function isolated(): { dictionary: Dictionary; citizen: string; enterprise: string } {
  const base = loadDictionary();
  const prefix = uniqueName('e');
  const citizen = { ...getDataset(base, 'population.citizen'), id: `${prefix}.citizen` };
  const enterprise = { ...getDataset(base, 'business.enterprise'), id: `${prefix}.enterprise` };
  return {
    dictionary: {
      ...base,
      datasets: new Map([
        [citizen.id, citizen],
        [enterprise.id, enterprise],
      ]),
    },
    citizen: citizen.id,
    enterprise: enterprise.id,
  };
}

const at = (day: number): Date => new Date(Date.UTC(2026, 0, day));

const HANOI_COMMUNES = SAMPLE_RESIDENCES.find((residence) => residence.province === '01')!.communes;
describe('several agencies on real services: sources, agreements, subscriber copies and the NGDB', () => {
  const kafka = testKafka();
  const { dictionary, citizen, enterprise } = isolated();
  const stops: (() => Promise<unknown>)[] = [];
  const citizens = sampleCitizens(300, 1278);
  const enterprises = sampleEnterprises(50, 7);
  let hn: RunningSubscription;
  let ngdbPool: Awaited<ReturnType<typeof testPool>>['pool'];
  const hnId = uniqueName('ubnd-hn-');
  const moved = citizens.filter((c) => c.province_code === '01').slice(0, 8);
  const arrived = citizens.filter((c) => c.province_code === '79').slice(0, 5);

  beforeAll(async () => {
    const registry = await testRegistry();
    const redis = await testRedis();
    await ensureTopics(kafka, [
      { topic: topics.source(citizen), partitions: 3 },
      { topic: topics.source(enterprise), partitions: 2 },
      ...['ngdb', 'coordinator'].map((stage) => ({ topic: topics.deadLetter(stage), partitions: 1 })),
    ]);
    const { pool: platformPool } = await testPool();
    await migrate(platformPool, 'platform');
    const agreements = new AgreementStore(platformPool, dictionary);
    await agreements.create(
      {
        id: hnId,
        subscriber: 'UBND-HN',
        dataset: citizen,
        fields: ['personal_id', 'full_name', 'birth_date', 'commune_code'],
        // Hà Nội's communes of the sample: a filter may test only shared fields
        filter: `commune_code in [${HANOI_COMMUNES.map((code) => `"${code}"`).join(', ')}]`,
        purpose: 'local administrative procedures',
        legalBasis: 'Decree 278/2025/ND-CP, method (b)',
      },
      'e2e',
    );
    await agreements.approve(hnId, 'e2e');
    const coordinator = new Coordinator({
      kafka,
      registry: registry.client,
      dictionary,
      pool: platformPool,
      loadAgreements: () => agreements.list(),
      log,
      groupId: uniqueName('lt.coordinator.e2e-'),
      refreshMs: 200,
    });
    await coordinator.start();
    stops.push(() => coordinator.stop());
    ngdbPool = (await testPool()).pool;
    const ngdb = new NgdbSink({
      kafka,
      registry: registry.client,
      pool: ngdbPool,
      dictionary,
      redis,
      log,
      groupId: uniqueName('lt.ngdb.e2e-'),
    });
    await ngdb.start();
    stops.push(() => ngdb.stop());

    const bca = await testPublisher(registry.client, dictionary, 'BCA');
    const btc = await testPublisher(registry.client, dictionary, 'BTC');
    const publish = async (publisher: Publisher, dataset: string, changes: Change[]): Promise<void> => {
      expect((await publisher.publishBatch(dataset, changes)).rejected).toBe(0);
    };
    await publish(
      bca,
      citizen,
      citizens.map((after) => ({ op: 'CREATE', version: 1, after, occurredAt: at(1) })),
    );
    await publish(
      btc,
      enterprise,
      enterprises.map((after) => ({ op: 'CREATE', version: 1, after, occurredAt: at(1) })),
    );
    const move = (c: DatasetRecord, province: string, commune: string): DatasetRecord => ({
      ...c,
      province_code: province,
      commune_code: commune,
    });
    await publish(bca, citizen, [
      ...moved.map((c): Change => ({
        op: 'UPDATE',
        version: 2,
        after: move(c, '79', '26734'),
        occurredAt: at(10),
      })),
      ...arrived.map((c): Change => ({
        op: 'UPDATE',
        version: 2,
        after: move(c, '01', '00004'),
        occurredAt: at(10),
      })),
    ]);

    hn = await startSubscription(
      { agreement: hnId, dataset: citizen },
      {
        kafka,
        registry: registry.client,
        dictionary,
        databaseUrl: inject('services').databaseUrl,
        agency: `UBND-HN-${uniqueName('')}`.toUpperCase(),
        redis,
        log,
      },
    );
    stops.unshift(async () => {
      await hn.pool.query(`DROP SCHEMA lt_share_${hnId.replace(/-/g, '_')} CASCADE`);
      await hn.stop();
    });
    const caughtUp = async (): Promise<number> =>
      (await groupLag(kafka, coordinator['options'].groupId!, topics.source(citizen))) +
      (await groupLag(kafka, ngdb.groupId, topics.source(citizen))) +
      (await groupLag(kafka, ngdb.groupId, topics.source(enterprise))) +
      (await groupLag(kafka, hn.sink['options'].groupId, topics.share(hnId)));
    // the coordinator catches up first, then the share stream it produced
    const deadline = Date.now() + 60_000;
    while ((await caughtUp()) > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 500));
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    while ((await caughtUp()) > 0 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 500));
  });

  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('UBND-HN holds exactly the province-01 citizens, with exactly the agreed columns', async () => {
    const inHanoi = new Set([
      ...citizens
        .filter((c) => c.province_code === '01' && !moved.includes(c))
        .map((c) => String(c.personal_id)),
      ...arrived.map((c) => String(c.personal_id)),
    ]);
    const { rows } = await hn.pool.query<Record<string, unknown>>(
      `SELECT * FROM ${hn.sink.table.name} WHERE NOT _deleted ORDER BY personal_id`,
    );
    expect(rows.map((row) => row.personal_id)).toEqual([...inHanoi].sort());
    expect(Object.keys(rows[0]!).filter((column) => !column.startsWith('_'))).toEqual([
      'personal_id',
      'full_name',
      'birth_date',
      'commune_code',
    ]);
    const arrivedRow = rows.find((row) => row.personal_id === arrived[0]!.personal_id);
    expect(arrivedRow?.commune_code).toBe('00004');
  });

  it('deletes the citizens who moved away from UBND-HN’s copy and keeps their version', async () => {
    const { rows } = await hn.pool.query<{ personal_id: string; _version: string }>(
      `SELECT personal_id, _version FROM ${hn.sink.table.name} WHERE _deleted ORDER BY personal_id`,
    );
    expect(rows).toEqual(
      moved
        .map((c) => ({ personal_id: String(c.personal_id), _version: '2' }))
        .sort((a, b) => (a.personal_id < b.personal_id ? -1 : 1)),
    );
  });

  it('has BTC’s enterprises and BCA’s citizens in the NGDB, with history, answering "as of T"', async () => {
    const { rows: current } = await ngdbPool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${enterprise.replace(/[.-]/g, '_')} WHERE NOT _deleted`,
    );
    expect(Number(current[0]!.n)).toBe(enterprises.length);
    const citizenDataset = dictionary.datasets.get(citizen)!;
    const mover = moved[0]!;
    expect(
      await stateAsOf(ngdbPool, citizenDataset, String(mover.personal_id), new Date(Date.UTC(2025, 11, 31))),
    ).toBeNull();
    expect(
      (await stateAsOf(ngdbPool, citizenDataset, String(mover.personal_id), at(5)))?.record.province_code,
    ).toBe('01');
    expect(
      (await stateAsOf(ngdbPool, citizenDataset, String(mover.personal_id), at(20)))?.record.province_code,
    ).toBe('79');
    const { rows: history } = await ngdbPool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${citizen.replace(/[.-]/g, '_')}_history`,
    );
    expect(Number(history[0]!.n)).toBe(citizens.length + moved.length + arrived.length);
  });
});
