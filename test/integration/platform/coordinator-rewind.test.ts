import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../../../infra/postgres/pool.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import { startOwnPostgres, type OwnPostgres } from '../../faults/own-services.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { shareTopicSize, testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { testKafka, testPool, testPublisher, testRegistry, uniqueName } from '../../helpers/services.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';

/** Two agreements on the test's dataset: one there from the start, one approved later. */
function twoAgreements(datasetId: string): { first: Agreement; later: Agreement } {
  const fields = ['personal_id', 'full_name'];
  return {
    first: approvedAgreement({ id: uniqueName('first-'), subscriber: 'BHXH', dataset: datasetId, fields }),
    later: approvedAgreement({ id: uniqueName('later-'), subscriber: 'BTC', dataset: datasetId, fields }),
  };
}

describe('an agreement approved while the coordinator was down', () => {
  const kafka = testKafka();
  const { dataset, dictionary } = isolatedDataset(loadDictionary(), 'population.citizen');
  const groupId = uniqueName('lt.coordinator.rewind-');
  const { first, later } = twoAgreements(dataset.id);
  let agreements: Agreement[] = [first];
  let registry: SchemaRegistry;
  let pool: Pool;
  let coordinator: Coordinator | undefined;

  const shareSize = (agreementId: string) => shareTopicSize(kafka, agreementId);

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

describe('a rewind that fails', () => {
  const kafka = testKafka();
  const { dataset, dictionary } = isolatedDataset(loadDictionary(), 'population.citizen');
  const { first, later } = twoAgreements(dataset.id);
  let agreements: Agreement[] = [first];
  // the coordinator's state on a PostgreSQL of this test's own, which it stops (never the machine's)
  let postgres: OwnPostgres;
  let pool: Pool;
  let coordinator: Coordinator | undefined;

  const shareSize = (agreementId: string) => shareTopicSize(kafka, agreementId);

  beforeAll(async () => {
    postgres = await startOwnPostgres();
    pool = await createPool({ url: postgres.url, schema: 'lt_platform', max: 4 });
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [{ topic: topics.source(dataset.id), partitions: 2 }]);
  });

  afterAll(async () => {
    await coordinator?.stop().catch(() => undefined);
    await pool?.end().catch(() => undefined);
    await postgres?.destroy();
  });

  it('is tried again until it succeeds, so an agreement approved meanwhile still gets its backfill', async () => {
    const registry = (await testRegistry()).client;
    const publisher = await testPublisher(registry, dictionary, 'BCA');
    await publisher.publishBatch(
      dataset.id,
      sampleCitizens(20, 61).map((after) => ({ op: 'CREATE', version: 1, after })),
    );
    coordinator = await testCoordinator({
      registry,
      dictionary,
      pool,
      loadAgreements: async () => agreements,
    });
    await expect.poll(() => shareSize(first.id), { timeout: 30_000 }).toBe(20);

    await postgres.stop(); // the state store is gone when the new agreement arrives
    agreements = [first, later];
    // its backfill cannot start (nor a rewind be done): the agreement is degraded, tried again with backoff
    await expect
      .poll(
        () =>
          coordinator!.stats.rewindFailures > 0 ||
          coordinator!.degraded.some((entry) => entry.agreementId === later.id),
        { timeout: 15_000 },
      )
      .toBe(true);
    expect(await shareSize(later.id)).toBe(0);

    await postgres.start();
    // before: the failed rewind was only logged, and this agreement never received the history
    await expect.poll(() => shareSize(later.id), { timeout: 60_000, interval: 500 }).toBe(20);
    expect(await shareSize(first.id)).toBe(20);
  }, 120_000);
});
