import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Deduplicator } from '../../../consumers/sink/dedup.ts';
import { Sink } from '../../../consumers/sink/sink.ts';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { parseFilter } from '../../../platform/agreements/filter.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import type { Publisher } from '../../../producers/publisher/index.ts';
import { relocate, sampleCitizens, seededRandom } from '../../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { projectDataset } from '../../../schemas/model/projection.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  testRegistry,
  uniqueName,
} from '../../helpers/services.ts';

// the filters test province_code and gender, so the agreements share them (a filter may test only shared fields)
const SHARED = ['personal_id', 'full_name', 'birth_date', 'gender', 'province_code', 'commune_code'];

describe('the coordinator derives per-agreement streams from the source topic', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const agreements: Agreement[] = [];
  const stops: (() => Promise<unknown>)[] = [];
  let publisher: Publisher;
  let registry: Awaited<ReturnType<typeof testRegistry>>;
  let coordinator: Coordinator;

  function agreement(id: string, subscriber: string, province: string): Agreement {
    return approvedAgreement({
      id,
      subscriber,
      dataset: dataset.id,
      fields: SHARED,
      filter: `province_code in ["${province}"]`,
    });
  }

  async function subscriberSink(agreementId: string): Promise<Sink> {
    // the coordinator creates the share topic when it first sees the agreement approved
    const admin = kafka.admin();
    await admin.connect();
    await expect
      .poll(() => admin.listTopics(), { timeout: 10_000, interval: 100 })
      .toContain(topics.share(agreementId));
    await admin.disconnect();
    const { pool } = await testPool();
    const sink = new Sink({
      kafka,
      registry: registry.client,
      pool,
      dataset: projectDataset(dataset, SHARED),
      topic: topics.share(agreementId),
      groupId: uniqueName('lt.sink.test-'),
      dedup: new Deduplicator(await testRedis(), agreementId, 600, log),
      log,
    });
    await sink.start();
    stops.push(() => sink.stop());
    return sink;
  }

  async function rows(sink: Sink): Promise<Record<string, unknown>[]> {
    const result = await sink['options'].pool.query<Record<string, unknown>>(
      `SELECT * FROM ${sink.table.name} WHERE NOT _deleted ORDER BY personal_id`,
    );
    return result.rows;
  }

  const hnId = uniqueName('ubnd-hn-');
  const hcmId = uniqueName('ubnd-hcm-');
  const citizens = sampleCitizens(200, 77);
  const current = new Map<string, DatasetRecord>(citizens.map((c) => [String(c.personal_id), c]));

  beforeAll(async () => {
    registry = await testRegistry();
    const { pool } = await testPool();
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [
      { topic: topics.source(dataset.id), partitions: 3 },
      { topic: topics.deadLetter('coordinator'), partitions: 1 },
    ]);
    publisher = await testPublisher(registry.client, dictionary, 'BCA');
    agreements.push(agreement(hnId, 'UBND-HN', '01'));
    coordinator = await testCoordinator({
      registry: registry.client,
      dictionary,
      pool,
      loadAgreements: async () => agreements,
    });
    stops.unshift(() => coordinator.stop());
  });

  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('gives UBND-HN exactly the province-01 citizens, with only the agreed columns', async () => {
    await publisher.publishBatch(
      dataset.id,
      citizens.map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    const sink = await subscriberSink(hnId);
    const expected = citizens
      .filter((c) => c.province_code === '01')
      .map((c) => String(c.personal_id))
      .sort();
    await expect
      .poll(async () => (await rows(sink)).map((row) => row.personal_id), { timeout: 30_000, interval: 250 })
      .toEqual(expected);
    const [row] = await rows(sink);
    expect(Object.keys(row!).filter((column) => !column.startsWith('_'))).toEqual(SHARED);
  });

  it('moves a citizen from Hà Nội to TP HCM: a DELETE for UBND-HN, a CREATE for a later UBND-HCM agreement (backfilled)', async () => {
    const random = seededRandom(9);
    const leavers = citizens.filter((c) => c.province_code === '01').slice(0, 10);
    const moved: DatasetRecord[] = leavers.map((c) => ({
      ...relocate(c, random),
      province_code: '79',
      commune_code: '26734',
    }));
    await publisher.publishBatch(
      dataset.id,
      moved.map((after) => ({ op: 'UPDATE', version: 2, after })),
    );
    moved.forEach((c) => current.set(String(c.personal_id), c));

    // approved after the data was published: starts with a backfill from the topic's history
    agreements.push(agreement(hcmId, 'UBND-HCM', '79'));
    const hn = await subscriberSink(hnId);
    const hcm = await subscriberSink(hcmId);
    const inProvince = (p: string): string[] =>
      [...current.values()]
        .filter((c) => c.province_code === p)
        .map((c) => String(c.personal_id))
        .sort();
    await expect
      .poll(async () => (await rows(hn)).map((r) => r.personal_id), { timeout: 30_000, interval: 250 })
      .toEqual(inProvince('01'));
    await expect
      .poll(async () => (await rows(hcm)).map((r) => r.personal_id), { timeout: 30_000, interval: 250 })
      .toEqual(inProvince('79'));
    for (const leaver of leavers) expect(inProvince('79')).toContain(String(leaver.personal_id));

    // the leavers stay in UBND-HN's table only as version tombstones
    const { rows: tombstones } = await hn['options'].pool.query<{ n: string }>(
      `SELECT count(*) AS n FROM ${hn.table.name} WHERE _deleted`,
    );
    expect(Number(tombstones[0]!.n)).toBe(10);
  });

  it('leaves fields outside the agreement out of the share topic’s bytes', async () => {
    const consumer = kafka.consumer({ groupId: uniqueName('bytes-') });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.share(hnId), fromBeginning: true });
    const values: Buffer[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => void (message.value && values.push(message.value)),
    });
    await expect.poll(() => values.length, { timeout: 20_000 }).toBeGreaterThan(10);
    await consumer.disconnect();
    const haystack = Buffer.concat(values).toString('latin1');
    const addresses = citizens.map((c) =>
      Buffer.from(String(c.permanent_address), 'utf8').toString('latin1'),
    );
    expect(addresses.filter((address) => haystack.includes(address))).toEqual([]);
    const decoded = (await registry.client.decode(values[0]!)) as { after: Record<string, unknown> };
    expect(Object.keys(decoded.after).sort()).toEqual([...SHARED].sort());
  });

  it('does not forward an update that changes no shared field (it would tell when hidden fields change), and forwards the next that does', async () => {
    const citizen = [...current.values()].find((c) => c.province_code === '01')!;
    const key = String(citizen.personal_id);
    const hiddenChange = { ...citizen, permanent_address: '99 Phố Ẩn, Hà Nội' };
    const sharedChange = { ...hiddenChange, full_name: `${String(citizen.full_name)} Mới` };
    await publisher.publishBatch(dataset.id, [{ op: 'UPDATE', version: 5, after: hiddenChange }]);
    await publisher.publishBatch(dataset.id, [{ op: 'UPDATE', version: 6, after: sharedChange }]);
    current.set(key, sharedChange);
    let versions: unknown[] = [];
    await expect
      .poll(
        async () => {
          const records = await readShareTopic(hnId, 1);
          versions = records.filter((r) => r.event?.key === key).map((r) => r.event!.version);
          return versions.includes(6);
        },
        { timeout: 30_000, interval: 500 },
      )
      .toBe(true);
    expect(versions).toEqual([1, 6]);
  });

  /** Every record of a share topic with its headers and decoded value (null for tombstones and controls). */
  async function readShareTopic(
    agreementId: string,
    atLeast: number,
  ): Promise<{ headers: Record<string, string>; event: Record<string, unknown> | null }[]> {
    const consumer = kafka.consumer({ groupId: uniqueName('read-') });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.share(agreementId), fromBeginning: true });
    const records: { headers: Record<string, string>; event: Record<string, unknown> | null }[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => {
        const headers = Object.fromEntries(
          Object.entries(message.headers ?? {}).map(([k, v]) => [k, String(v)]),
        );
        records.push({
          headers,
          event: message.value
            ? ((await registry.client.decode(message.value)) as Record<string, unknown>)
            : null,
        });
      },
    });
    await expect
      .poll(() => records.length, { timeout: 30_000, interval: 250 })
      .toBeGreaterThanOrEqual(atLeast);
    await consumer.disconnect();
    return records;
  }

  it('re-derives the stream when the filter changes: the new revision deletes what it no longer shares', async () => {
    const hn = agreements.find((a) => a.id === hnId)!;
    const parsed = parseFilter('province_code in ["01"] and gender == "F"');
    if (!parsed.ok) throw new Error('filter');
    Object.assign(hn, {
      filter: parsed.ast,
      filterText: 'province_code in ["01"] and gender == "F"',
      revision: 2,
    });
    const inHanoi = [...current.values()].filter((c) => c.province_code === '01');
    const men = inHanoi
      .filter((c) => c.gender === 'M')
      .map((c) => String(c.personal_id))
      .sort();
    const women = inHanoi
      .filter((c) => c.gender === 'F')
      .map((c) => String(c.personal_id))
      .sort();
    // every key revision 1 shared or once shared and revision 2 does not: the men of Hà Nội, and those who
    // moved away (a subscriber that lost records may still hold one whose DELETE it never read)
    const unshared = citizens
      .filter((c) => c.province_code === '01')
      .map((c) => String(c.personal_id))
      .filter((key) => !women.includes(key))
      .sort();
    expect(unshared.length).toBeGreaterThan(men.length);
    const retired = (r: { event: Record<string, unknown> | null }): boolean =>
      r.event?.op === 'DELETE' && String(r.event.traceId).startsWith('retire-');
    const revision2 = (records: Awaited<ReturnType<typeof readShareTopic>>) =>
      records.filter((r) => r.headers['lt-agreement-revision'] === '2' && r.event !== null);
    await expect
      .poll(async () => revision2(await readShareTopic(hnId, 1)).filter(retired).length, {
        timeout: 30_000,
        interval: 1000,
      })
      .toBe(unshared.length);
    const records = revision2(await readShareTopic(hnId, 1));
    // what revision 1 had shared and revision 2 does not is retired by revision 2; women who moved away were
    // replayed in and out by revision 2 itself
    expect(
      records
        .filter(retired)
        .map((r) => r.event!.key)
        .sort(),
    ).toEqual(unshared);
    const kept = records.filter((r) => r.event!.op !== 'DELETE').map((r) => String(r.event!.key));
    expect(women.every((key) => kept.includes(key))).toBe(true);
    expect(kept.every((key) => !men.includes(key))).toBe(true);
  });

  it('tells the subscriber on every partition when its agreement is revoked, and whether to purge', async () => {
    Object.assign(
      agreements.find((a) => a.id === hcmId)!,
      { status: 'revoked', onEnd: 'purge', statusReason: 'agreement withdrawn' },
    );
    await expect
      .poll(
        async () =>
          (await readShareTopic(hcmId, 1)).filter((r) => r.headers['lt-control'] === 'agreement-ended')
            .length,
        {
          timeout: 20_000,
          interval: 500,
        },
      )
      .toBe(3);
    const controls = (await readShareTopic(hcmId, 1)).filter(
      (r) => r.headers['lt-control'] === 'agreement-ended',
    );
    expect(controls.every((r) => r.headers['lt-end-policy'] === 'purge' && r.event === null)).toBe(true);
  });

  it('has processed every source record it read', async () => {
    expect(
      await waitForGroup(kafka, coordinator['options'].groupId!, topics.source(dataset.id), 20_000),
    ).toBe(0);
    expect(coordinator.stats.rejected).toBe(0);
  });
});
