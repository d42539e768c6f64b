import { ConfigResourceTypes } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { Coordinator } from '../../../platform/coordinator/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { log, testKafka, testPool, testPublisher, testRegistry, uniqueName } from '../../helpers/services.ts';

// A new agreement over a source topic with a long history: one fetch brings more records than one produce
// request may carry (the test broker's message.max.bytes is 2 MiB), so the coordinator must split its output.
const EVENTS = 20_000;

describe('the coordinator backfills a large source history', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const agreementId = uniqueName('bhxh-all-');
  const groupId = uniqueName('lt.coordinator.backlog-');
  let coordinator: Coordinator;

  beforeAll(async () => {
    const registry = await testRegistry();
    const { pool } = await testPool();
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [{ topic: topics.source(dataset.id), partitions: 1 }]);
    const publisher = await testPublisher(registry.client, dictionary, 'BCA');
    const citizens = sampleCitizens(EVENTS, 404);
    for (let i = 0; i < citizens.length; i += 5_000) {
      await publisher.publishBatch(
        dataset.id,
        citizens.slice(i, i + 5_000).map((after) => ({ op: 'CREATE', version: 1, after })),
      );
    }
    const agreement = approvedAgreement({
      id: agreementId,
      subscriber: 'BHXH',
      dataset: dataset.id,
      fields: dataset.fields.map((field) => field.name),
    });
    coordinator = new Coordinator({
      kafka,
      registry: registry.client,
      dictionary,
      pool,
      loadAgreements: async () => [agreement],
      log,
      groupId,
      refreshMs: 500,
    });
    await coordinator.start();
  });

  afterAll(async () => {
    await coordinator?.stop();
  });

  it('shares every record of the history, however large the batches it reads', async () => {
    // the dataset's only agreement: nothing live to stall, so the main consumer derives its history itself
    expect(await waitForGroup(kafka, groupId, topics.source(dataset.id), 90_000)).toBe(0);
    const admin = kafka.admin();
    await admin.connect();
    const offsets = await admin
      .fetchTopicOffsets(topics.share(agreementId))
      .finally(() => admin.disconnect());
    expect(offsets.reduce((sum, { high }) => sum + Number(high), 0)).toBe(EVENTS);
    expect(coordinator.stats).toMatchObject({ shared: EVENTS, backfilled: 0, rejected: 0 });
  }, 120_000);

  it('provisions each agency’s own sink dead-letter topic with bounded retention (an Agent Node creates no topics)', async () => {
    const admin = kafka.admin();
    await admin.connect();
    const { resources } = await admin
      .describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topics.deadLetter('sink', 'BHXH') }],
      })
      .finally(() => admin.disconnect());
    const retention = resources[0]?.configEntries.find((entry) => entry.configName === 'retention.ms');
    expect(retention?.configValue).toBe(String(30 * 86_400_000));
  });
});
