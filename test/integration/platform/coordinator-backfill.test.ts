import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import type { Publisher } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../../schemas/registry/client.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { readShareTopic, shareTopicSize, testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { testKafka, testPool, testPublisher, testRegistry, uniqueName } from '../../helpers/services.ts';

const HISTORY = 40_000; // enough that its backfill is still running when the live events have been delivered
const LIVE = 60;
const FIELDS = ['personal_id', 'full_name'];

describe('a backfill on a consumer of its own', () => {
  const kafka = testKafka();
  const { dataset, dictionary } = isolatedDataset(loadDictionary(), 'population.citizen');
  const source = topics.source(dataset.id);
  const live = approvedAgreement({
    id: uniqueName('live-'),
    subscriber: 'BHXH',
    dataset: dataset.id,
    fields: FIELDS,
  });
  const later = approvedAgreement({
    id: uniqueName('later-'),
    subscriber: 'BTC',
    dataset: dataset.id,
    fields: FIELDS,
  });
  const agreements: Agreement[] = [live];
  let registry: SchemaRegistry;
  let pool: Pool;
  let publisher: Publisher;
  let coordinator: Coordinator | undefined;

  beforeAll(async () => {
    registry = (await testRegistry()).client;
    ({ pool } = await testPool());
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [{ topic: source, partitions: 2 }]);
    publisher = await testPublisher(registry, dictionary, 'BCA');
  });

  afterAll(async () => {
    await coordinator?.stop();
  });

  /** Whether `later`'s backfill still has history to derive on some partition. */
  async function backfillRunning(): Promise<boolean> {
    const { rows } = await pool.query<{ running: boolean }>(
      `SELECT coalesce(bool_or(next_offset < until_offset), true) AS running FROM agreement_backfill
        WHERE agreement_id = $1`,
      [later.id],
    );
    return rows[0]?.running ?? true;
  }

  it('keeps delivering the live agreement while a new one backfills a large history, and hands the new one over without a gap or a duplicate', async () => {
    const citizens = sampleCitizens(HISTORY, 4242);
    for (let i = 0; i < citizens.length; i += 5_000)
      await publisher.publishBatch(
        dataset.id,
        citizens.slice(i, i + 5_000).map((after) => ({ op: 'CREATE', version: 1, after })),
      );
    coordinator = await testCoordinator({
      registry,
      dictionary,
      pool,
      loadAgreements: async () => agreements,
    });
    await expect
      .poll(() => shareTopicSize(kafka, live.id), { timeout: 120_000, interval: 500 })
      .toBe(HISTORY);

    agreements.push(later); // approved over the whole history
    await expect
      .poll(
        async () =>
          Number(
            (
              await pool.query<{ n: string }>(
                'SELECT count(*) AS n FROM agreement_backfill WHERE agreement_id = $1',
                [later.id],
              )
            ).rows[0]?.n,
          ),
        { timeout: 30_000, interval: 100 },
      )
      .toBe(2);
    // published after the approval: the live agreement gets them while the new one's history is still derived
    // (before: the one consumer went back to offset 0 for the new agreement, and these waited behind it)
    const updates = citizens.slice(0, LIVE).map((citizen) => ({
      op: 'UPDATE' as const,
      version: 2,
      after: { ...citizen, full_name: `${String(citizen.full_name)} (đổi tên)` },
    }));
    await publisher.publishBatch(dataset.id, updates);
    await expect
      .poll(() => shareTopicSize(kafka, live.id), { timeout: 60_000, interval: 100 })
      .toBe(HISTORY + LIVE);
    expect(await backfillRunning()).toBe(true);
    expect(await shareTopicSize(kafka, later.id)).toBeLessThan(HISTORY);

    // the new agreement: the whole history and the live updates, each (key, version) once
    await expect.poll(backfillRunning, { timeout: 180_000, interval: 500 }).toBe(false);
    expect(
      await waitForGroup(kafka, consumerGroups.coordinatorBackfill(later.id, later.revision), source, 60_000),
    ).toBe(0);
    const shared = await readShareTopic(kafka, registry, later.id);
    const byKeyVersion = new Map<string, Set<string>>();
    for (const record of shared) {
      const id = `${record.key}/${record.version}`;
      byKeyVersion.set(id, (byKeyVersion.get(id) ?? new Set()).add(record.eventId));
    }
    // an update delivered live before the backfill reached its key's history makes the backfill skip that
    // older version (the subscriber's guard would refuse it anyway): either both versions, or the update alone
    const expected = new Set([
      ...citizens.map((citizen) => `${String(citizen.personal_id)}/1`),
      ...citizens.slice(0, LIVE).map((citizen) => `${String(citizen.personal_id)}/2`),
    ]);
    const missing = [...expected].filter(
      (id) => !byKeyVersion.has(id) && !(id.endsWith('/1') && byKeyVersion.has(id.replace(/\/1$/, '/2'))),
    );
    expect(missing).toEqual([]);
    expect([...byKeyVersion.keys()].filter((id) => !expected.has(id))).toEqual([]);
    expect(shared.length).toBe(byKeyVersion.size); // no record twice
    // and nothing older after something newer: per key, versions only go up on the share topic
    const last = new Map<string, number>();
    const backwards = shared.filter((record) => {
      const before = last.get(record.key) ?? 0;
      last.set(record.key, Math.max(before, record.version));
      return record.version < before;
    });
    expect(backwards).toEqual([]);
    expect(coordinator.stats.backfilled).toBeGreaterThan(0);
    expect(await shareTopicSize(kafka, live.id)).toBe(HISTORY + LIVE); // the live agreement got nothing twice
  }, 400_000);
});
