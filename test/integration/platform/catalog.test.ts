import { afterAll, describe, expect, it } from 'vitest';
import { Deduplicator } from '../../../consumers/sink/dedup.ts';
import { Sink } from '../../../consumers/sink/sink.ts';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { listen } from '../../../infra/http/server.ts';
import { Catalog } from '../../../platform/catalog/catalog.ts';
import { registerCatalogRoutes } from '../../../platform/catalog/routes.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { createRegistryServer } from '../../../schemas/registry/server.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { log, testKafka, testPool, testPublisher, testRedis, testRegistry } from '../../helpers/services.ts';

describe('the catalog records who publishes and receives which dataset', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const stops: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('counts BCA’s published records and UBND-HN’s received ones, and serves them over HTTP', async () => {
    const registry = await testRegistry();
    const { pool } = await testPool();
    const topic = topics.source(dataset.id);
    await ensureTopics(kafka, [{ topic, partitions: 2 }]);
    const publisher = await testPublisher(registry.client, dictionary, 'BCA');
    await publisher.publishBatch(
      dataset.id,
      sampleCitizens(20, 5).map((after) => ({ op: 'CREATE' as const, after, version: 1 })),
    );

    const groupId = consumerGroups.sink('UBND-HN');
    const sink = new Sink({
      kafka,
      registry: registry.client,
      pool,
      dataset,
      topic,
      groupId,
      dedup: new Deduplicator(await testRedis(), 'c', 60, log),
      log,
    });
    await sink.start();
    stops.push(() => sink.stop());
    expect(await waitForGroup(kafka, groupId, topic, 60_000)).toBe(0);

    const registryPool = (registry.store as unknown as { pool: typeof pool }).pool;
    const catalog = new Catalog({ dictionary, kafka, registryPool });
    const entry = await catalog.dataset(dataset.id);
    expect(entry?.owner).toBe('BCA');
    expect(entry?.fields.find((field) => field.name === 'ethnicity')?.classification).toBe(
      'sensitive-personal',
    );
    expect(entry?.connections).toEqual([
      {
        agency: 'BCA',
        role: 'publishes',
        via: topic,
        since: expect.stringMatching(/^\d{4}-\d{2}-\d{2}T/),
        records: 20,
      },
      { agency: 'UBND-HN', role: 'receives', via: groupId, since: null, records: 20 },
    ]);

    const app = createRegistryServer(registry.store, log);
    registerCatalogRoutes(app, catalog, dictionary);
    const url = await listen(app);
    stops.push(() => app.close());
    const response = await fetch(`${url}/v1/catalog/datasets/${dataset.id}`);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect((await response.json()) as unknown).toMatchObject({
      id: dataset.id,
      topic,
      connections: [{ records: 20 }, { records: 20 }],
    });
    const unknown = await fetch(`${url}/v1/catalog/datasets/population.citizens`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { known: string[] }).known).toContain('population.citizen');
  });
});
