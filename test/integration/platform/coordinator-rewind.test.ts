import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { testKafka, testPool, testPublisher, testRegistry, uniqueName } from '../../helpers/services.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';

describe('an agreement approved while the coordinator was down', () => {
  const kafka = testKafka();
  const { dataset, dictionary } = isolatedDataset(loadDictionary(), 'population.citizen');
  const groupId = uniqueName('lt.coordinator.rewind-');
  const fields = ['personal_id', 'full_name'];
  const first = approvedAgreement({
    id: uniqueName('first-'),
    subscriber: 'BHXH',
    dataset: dataset.id,
    fields,
  });
  const later = approvedAgreement({
    id: uniqueName('later-'),
    subscriber: 'BTC',
    dataset: dataset.id,
    fields,
  });
  let agreements: Agreement[] = [first];
  let registry: SchemaRegistry;
  let pool: Pool;
  let coordinator: Coordinator | undefined;

  async function shareSize(agreementId: string): Promise<number> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      if (!(await admin.listTopics()).includes(topics.share(agreementId))) return 0;
      const offsets = await admin.fetchTopicOffsets(topics.share(agreementId));
      return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
    } finally {
      await admin.disconnect();
    }
  }

  beforeAll(async () => {
    registry = (await testRegistry()).client;
    ({ pool } = await testPool());
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [{ topic: topics.source(dataset.id), partitions: 2 }]);
  });

  afterAll(async () => {
    await coordinator?.stop();
  });

  it('gets its backfill from the start of the source topic when the coordinator comes back', async () => {
    const publisher = await testPublisher(registry, dictionary, 'BCA');
    await publisher.publishBatch(
      dataset.id,
      sampleCitizens(25, 41).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    const start = () =>
      testCoordinator({ registry, dictionary, pool, groupId, loadAgreements: async () => agreements });
    coordinator = await start();
    await expect.poll(() => shareSize(first.id), { timeout: 30_000 }).toBe(25);
    await coordinator.stop(); // its group has committed every source offset
    agreements = [first, later];
    coordinator = await start();
    // before: the first join's rewind found no consumer yet, so the group went on from its committed offsets
    await expect.poll(() => shareSize(later.id), { timeout: 30_000 }).toBe(25);
    expect(await shareSize(first.id)).toBe(25); // and the first agreement got nothing twice
  }, 90_000);
});
