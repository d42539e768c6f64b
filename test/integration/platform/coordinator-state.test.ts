import { describe, expect, it } from 'vitest';
import { CoordinatorState } from '../../../platform/coordinator/state.ts';
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
});
