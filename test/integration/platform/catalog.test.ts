import { afterAll, describe, expect, it } from 'vitest';
import { Deduplicator } from '../../../consumers/sink/dedup.ts';
import { Sink } from '../../../consumers/sink/sink.ts';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { listen } from '../../../infra/http/server.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { AgreementStore } from '../../../platform/agreements/index.ts';
import { Catalog } from '../../../platform/catalog/catalog.ts';
import { registerCatalogRoutes } from '../../../platform/catalog/routes.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { createRegistryServer } from '../../../schemas/registry/server.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  log,
  testKafka,
  testPool,
  testPublisher,
  testRedis,
  registryIdentity,
  testFetch,
  testRegistry,
  testRegistryServerOptions,
  uniqueName,
} from '../../helpers/services.ts';
import { platformFetch } from '../../helpers/https.ts';

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

    const app = createRegistryServer(registry.store, log, testRegistryServerOptions());
    registerCatalogRoutes(app, catalog, dictionary);
    const url = await listen(app);
    stops.push(() => app.close());
    const anonymous = await platformFetch(`${url}/v1/catalog/datasets/${dataset.id}`, {
      ...(registryIdentity.ca ? { ca: registryIdentity.ca } : {}),
    });
    if (registryIdentity.auth) expect(anonymous.status).toBe(401); // the catalog, too, knows its caller
    const response = await testFetch(`${url}/v1/catalog/datasets/${dataset.id}`);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect((await response.json()) as unknown).toMatchObject({
      id: dataset.id,
      topic,
      connections: [{ records: 20 }, { records: 20 }],
    });
    const unknown = await testFetch(`${url}/v1/catalog/datasets/population.citizens`);
    expect(unknown.status).toBe(404);
    expect(((await unknown.json()) as { known: string[] }).known).toContain('population.citizen');
  });
});

describe('the catalog shows each dataset’s agreements and which are degraded', () => {
  it('names the reason the coordinator recorded for a degraded agreement, and nothing for a flowing one', async () => {
    const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
    const { pool } = await testPool();
    await migrate(pool, 'platform');
    const store = new AgreementStore(pool, dictionary);
    const input = {
      subscriber: 'BHXH',
      dataset: dataset.id,
      fields: ['personal_id', 'full_name'],
      purpose: 'social insurance enrolment',
      legalBasis: 'Decree 278/2025/ND-CP, method (b)',
    };
    await store.create({ ...input, id: uniqueName('flowing-') }, 'BCA:approver');
    const stuck = await store.create({ ...input, id: uniqueName('stuck-') }, 'BCA:approver');
    await store.approve(stuck.id, 'BCA:approver');
    // what the coordinator writes when it cannot prepare the stream (coordinator-isolation.test.ts)
    await pool.query(
      `INSERT INTO agreement_degraded (agreement_id, revision, code, reason, since, attempts, next_attempt_at)
       VALUES ($1, 1, 'LT_REGISTRY_UNREACHABLE', 'the registry did not answer', now(), 3, now())`,
      [stuck.id],
    );
    const entry = await new Catalog({ dictionary, agreements: store }).dataset(dataset.id);
    expect(entry?.agreements).toEqual([
      {
        id: stuck.id,
        subscriber: 'BHXH',
        status: 'approved',
        degraded: expect.objectContaining({ code: 'LT_REGISTRY_UNREACHABLE', attempts: 3 }),
      },
    ]); // the request that was never approved is not listed
  });
});
