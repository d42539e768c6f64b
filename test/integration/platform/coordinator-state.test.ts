import { describe, expect, it } from 'vitest';
import { inTransaction } from '../../../infra/postgres/pool.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { CoordinatorState, type StreamRef } from '../../../platform/coordinator/state.ts';
import { testPool } from '../../helpers/services.ts';

describe('the coordinator state', () => {
  it('lets one transaction at a time derive a source partition, whichever coordinator runs it', async () => {
    const { pool } = await testPool();
    const [first, second, other] = [await pool.connect(), await pool.connect(), await pool.connect()];
    try {
      await first.query('BEGIN');
      await new CoordinatorState(first).lockPartition('lt.src.population.citizen', 2);
      const { rows: pids } = await second.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
      await second.query('BEGIN');
      let taken = false;
      const waiting = new CoordinatorState(second)
        .lockPartition('lt.src.population.citizen', 2)
        .then(() => (taken = true));
      // the second waits for the first: its advisory lock is not granted
      await expect
        .poll(async () => {
          const { rows } = await pool.query<{ n: string }>(
            `SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND pid = $1`,
            [pids[0]!.pid],
          );
          return Number(rows[0]?.n);
        })
        .toBe(1);
      // another partition is not held up
      await other.query('BEGIN');
      await new CoordinatorState(other).lockPartition('lt.src.population.citizen', 3);
      await other.query('COMMIT');
      expect(taken).toBe(false);
      await first.query('COMMIT');
      await waiting;
      expect(taken).toBe(true);
      await second.query('COMMIT');
    } finally {
      for (const client of [first, second, other]) client.release();
    }
  });

  it('gives a new stream a backfill consumer only when another stream of the dataset is live, and decides once', async () => {
    const { pool } = await testPool();
    await migrate(pool, 'platform');
    const topic = 'lt.src.population.citizen';
    const offsets = [
      { partition: 0, low: 5, high: 120 },
      { partition: 1, low: 0, high: 80 },
    ];
    const decide = (stream: StreamRef, others: StreamRef[]) =>
      inTransaction(pool, (client) =>
        new CoordinatorState(client).decideHistory(stream, topic, offsets, others),
      );
    const a = { agreementId: 'AGR-A', revision: 1 };
    const b = { agreementId: 'AGR-B', revision: 1 };
    const c = { agreementId: 'AGR-C', revision: 1 };
    const unseen = { agreementId: 'AGR-UNSEEN', revision: 1 };
    // the dataset's first stream (the other agreement named has no progress): from the log start, as progress
    expect(await decide(a, [unseen])).toBe('fromStart');
    const { rows: progress } = await pool.query<{ partition: number; next_offset: string }>(
      'SELECT partition, next_offset FROM agreement_progress WHERE agreement_id = $1 ORDER BY partition',
      [a.agreementId],
    );
    expect(progress.map((row) => [row.partition, Number(row.next_offset)])).toEqual([
      [0, 5],
      [1, 0],
    ]);
    expect(await decide(a, [])).toBe('live'); // asked again (another coordinator, a restart): the same answer
    // a stream beside a live one: its history on a consumer of its own, until the end offsets now
    expect(await decide(b, [a])).toBe('backfill');
    const { rows: until } = await pool.query<{ partition: number; until_offset: string }>(
      'SELECT partition, until_offset FROM agreement_backfill WHERE agreement_id = $1 ORDER BY partition',
      [b.agreementId],
    );
    expect(until.map((row) => [row.partition, Number(row.until_offset)])).toEqual([
      [0, 120],
      [1, 80],
    ]);
    expect(await decide(b, [])).toBe('backfill');
    expect(await decide(c, [b])).toBe('backfill'); // B is live from its `until`, progress or not
  });
});
