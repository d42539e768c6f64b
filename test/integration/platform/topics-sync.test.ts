import { ConfigResourceTypes } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { syncTopics } from '../../../platform/topics/plan.ts';
import { loadDictionary, type Dictionary } from '../../../schemas/model/dictionary.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { testKafka, uniqueName } from '../../helpers/services.ts';

const DAY_MS = 86_400_000;

describe('lienthong topics sync', () => {
  const kafka = testKafka();
  const isolated = isolatedDataset(loadDictionary(), 'population.citizen');
  // only this test's dataset, so other tests' topics never show up in its differences
  const dictionary: Dictionary = {
    ...isolated.dictionary,
    datasets: new Map([[isolated.dataset.id, { ...isolated.dataset, retention: 'unlimited' }]]),
  };
  const agreement = approvedAgreement({
    id: uniqueName('sync-'),
    subscriber: 'BHXH',
    dataset: isolated.dataset.id,
    fields: ['personal_id', 'full_name'],
  });
  const requested = { ...agreement, id: uniqueName('requested-'), status: 'requested' as const };
  const source = topics.source(isolated.dataset.id);
  const share = topics.share(agreement.id);
  const mine = new Set([source, share, topics.share(requested.id)]);

  async function configOf(topic: string): Promise<Map<string, string>> {
    const admin = kafka.admin();
    await admin.connect();
    try {
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }],
      });
      return new Map(resources[0]!.configEntries.map((entry) => [entry.configName, entry.configValue]));
    } finally {
      await admin.disconnect();
    }
  }

  it('shows, then makes, every topic with explicit settings; a second run changes nothing', async () => {
    // a share topic made earlier with the broker's defaults (7 days), as before this change
    await ensureTopics(kafka, [{ topic: share, partitions: 2 }]);
    const input = { dictionary, agreements: [agreement, requested], sourcePartitions: 2 };

    const planned = await syncTopics(kafka, input, { dryRun: true });
    const plannedMine = planned.changes.filter((change) => mine.has(change.topic));
    expect(plannedMine).toEqual([
      expect.objectContaining({ topic: source, action: 'create' }),
      expect.objectContaining({
        topic: share,
        action: 'set-config',
        detail: expect.stringContaining('retention.ms'),
      }),
    ]);
    expect((await configOf(share)).get('retention.ms')).toBe(String(7 * DAY_MS)); // dry run: untouched

    await syncTopics(kafka, input);
    const setting = (topic: string, name: string) =>
      expect.poll(async () => (await configOf(topic)).get(name), { timeout: 10_000 });
    await setting(source, 'retention.ms').toBe('-1');
    await setting(share, 'retention.ms').toBe('-1');
    await setting(share, 'min.insync.replicas').toBe('1'); // one broker here
    await setting(topics.deadLetter('sink', 'BHXH'), 'retention.ms').toBe(String(30 * DAY_MS));
    await setting(topics.deadLetter('coordinator'), 'retention.ms').toBe(String(30 * DAY_MS));

    const again = await syncTopics(kafka, input);
    expect(again.changes.filter((change) => mine.has(change.topic))).toEqual([]);
  });

  it('takes a dataset’s retention from the dictionary and never adds partitions to an existing source topic', async () => {
    // (adding partitions would move keys to other partitions and break the order of each key's changes)
    const kept = isolatedDataset(loadDictionary(), 'population.citizen');
    const dataset = { ...kept.dataset, retention: '400d' };
    await ensureTopics(kafka, [{ topic: topics.source(dataset.id), partitions: 1 }]);
    const { changes } = await syncTopics(kafka, {
      dictionary: { ...kept.dictionary, datasets: new Map([[dataset.id, dataset]]) },
      agreements: [],
      sourcePartitions: 4,
    });
    expect(changes.filter((change) => change.topic === topics.source(dataset.id))).toEqual([
      expect.objectContaining({ action: 'set-config' }),
    ]);
    await expect
      .poll(async () => (await configOf(topics.source(dataset.id))).get('retention.ms'), { timeout: 10_000 })
      .toBe(String(400 * DAY_MS));
  });
});
