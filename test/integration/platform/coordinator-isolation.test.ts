import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import { AgreementStore } from '../../../platform/agreements/index.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import type { Publisher } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { Dictionary } from '../../../schemas/model/dictionary.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { shareTopicSize, testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { testKafka, testPool, testPublisher, testRegistry, uniqueName } from '../../helpers/services.ts';

describe('one agreement that cannot be served does not hold up the others', () => {
  const kafka = testKafka();
  const flowing = isolatedDataset(loadDictionary(), 'population.citizen');
  // a second dataset of the dictionary whose source topic does not exist yet
  const late = isolatedDataset(flowing.dictionary, 'population.citizen');
  const dictionary: Dictionary = late.dictionary;
  const fields = ['personal_id', 'full_name'];
  const healthy = approvedAgreement({
    id: uniqueName('ok-'),
    subscriber: 'BHXH',
    dataset: flowing.dataset.id,
    fields,
  });
  const noTopic = approvedAgreement({
    id: uniqueName('no-topic-'),
    subscriber: 'BTC',
    dataset: late.dataset.id,
    fields,
  });
  const noDataset = approvedAgreement({
    id: uniqueName('gone-'),
    subscriber: 'BTC',
    dataset: 'gone.dataset',
    fields,
  });
  // a second agreement on the same dataset: what it receives shows the coordinator has read the records
  const witness = approvedAgreement({
    id: uniqueName('witness-'),
    subscriber: 'UBND-HN',
    dataset: flowing.dataset.id,
    fields,
  });
  // approved before filters were held to the shared fields: deriving it would leak ethnicity
  const leaky = approvedAgreement({
    id: uniqueName('leaky-'),
    subscriber: 'BTC',
    dataset: flowing.dataset.id,
    fields,
    filter: 'ethnicity == "01"',
  });
  let agreements: Agreement[] = [healthy, witness, noTopic, noDataset, leaky];
  let publisher: Publisher;
  let pool: Pool;
  let coordinator: Coordinator;

  const shareSize = (agreementId: string) => shareTopicSize(kafka, agreementId);

  beforeAll(async () => {
    const registry = await testRegistry();
    ({ pool } = await testPool());
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [
      { topic: topics.source(flowing.dataset.id), partitions: 2 },
      { topic: topics.deadLetter('coordinator'), partitions: 1 },
    ]);
    publisher = await testPublisher(registry.client, dictionary, 'BCA');
    coordinator = await testCoordinator({
      registry: registry.client,
      dictionary,
      pool,
      loadAgreements: async () => agreements,
    }); // before: the first refresh threw, and the coordinator did not start at all
  });

  afterAll(async () => {
    await coordinator?.stop();
  });

  it('serves the healthy agreement while the others are marked degraded with their reasons', async () => {
    await publisher.publishBatch(
      flowing.dataset.id,
      sampleCitizens(30, 1).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await expect.poll(() => shareSize(healthy.id), { timeout: 30_000 }).toBe(30);
    await expect.poll(() => shareSize(witness.id), { timeout: 30_000 }).toBe(30);
    const degraded = new Map(coordinator.degraded.map((entry) => [entry.agreementId, entry]));
    expect([...degraded.keys()].sort()).toEqual([noDataset.id, noTopic.id, leaky.id].sort());
    expect(degraded.get(leaky.id)).toMatchObject({ code: 'LT_AGREEMENT_INVALID' });
    expect(degraded.get(leaky.id)!.reason).toContain('ethnicity');
    // and recorded where `agreement show`, the agreements API and the catalog read it
    await expect
      .poll(async () => [...(await new AgreementStore(pool, dictionary).degradations()).keys()].sort(), {
        timeout: 5_000,
      })
      .toEqual([noDataset.id, noTopic.id, leaky.id].sort());
    expect(degraded.get(noDataset.id)).toMatchObject({ code: 'LT_DATASET_UNKNOWN', revision: 1 });
    expect(degraded.get(noDataset.id)!.reason).toContain('gone.dataset');
    expect(degraded.get(noTopic.id)!.reason).not.toBe('');
    expect(degraded.get(noTopic.id)!.attempts).toBeGreaterThanOrEqual(1);
  });

  it('stops a suspended agreement at once, although another still cannot be served', async () => {
    agreements = [{ ...healthy, status: 'suspended' }, witness, noTopic, noDataset];
    await expect
      .poll(() => (coordinator['streams'].get(flowing.dataset.id) ?? []).length, { timeout: 10_000 })
      .toBe(1);
    await publisher.publishBatch(
      flowing.dataset.id,
      sampleCitizens(10, 2).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    await expect.poll(() => shareSize(witness.id), { timeout: 30_000 }).toBe(40);
    expect(await shareSize(healthy.id)).toBe(30);
  });

  it('serves a degraded agreement once what it lacked is there, and forgets one that is no longer active', async () => {
    agreements = [noTopic];
    await ensureTopics(kafka, [{ topic: topics.source(late.dataset.id), partitions: 1 }]);
    await publisher.publishBatch(
      late.dataset.id,
      sampleCitizens(5, 3).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    // backoff doubles from 1 s; a minute is the most it waits
    await expect.poll(() => coordinator.degraded.length, { timeout: 70_000, interval: 500 }).toBe(0);
    await expect
      .poll(async () => (await new AgreementStore(pool, dictionary).degradations()).size, { timeout: 5_000 })
      .toBe(0);
    await expect.poll(() => shareSize(noTopic.id), { timeout: 30_000 }).toBe(5);
  }, 120_000);
});
