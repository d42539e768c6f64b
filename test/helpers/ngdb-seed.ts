import { v7 as uuidv7 } from 'uuid';
import { HistoryTable } from '../../schemas/postgres/history.ts';
import { inTransaction, quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import type { ChangeEvent, DatasetRecord } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';

/** Creates the NGDB tables of `dataset` in the pool's schema, as the NGDB sink does. No vitest: benches use it. */
export async function createNgdbTables(pool: Pool, dataset: Dataset): Promise<HistoryTable> {
  const history = new HistoryTable(dataset);
  await pool.query(history.current.createSql());
  for (const sql of history.createSql()) await pool.query(sql);
  return history;
}

/** Writes change events into an NGDB the way the NGDB sink's transaction does (history rows + versioned upsert). */
export async function writeNgdbEvents(
  pool: Pool,
  history: HistoryTable,
  events: ChangeEvent[],
): Promise<void> {
  for (let start = 0; start < events.length; start += 5_000) {
    const batch = events.slice(start, start + 5_000);
    await inTransaction(pool, async (client) => {
      await client.query(history.insertSql(), history.insertParams(batch));
      const latest = new Map<string, ChangeEvent>();
      for (const event of batch) {
        const known = latest.get(event.key);
        if (!known || event.version > known.version) latest.set(event.key, event);
      }
      const rows = [...latest.values()]
        .sort((a, b) => (a.key < b.key ? -1 : 1))
        .map((event) => history.current.row(event));
      await client.query(history.current.upsertSql(), history.current.upsertParams(rows));
    });
  }
}

/** A change event of `dataset` by its owner. */
export function citizenEvent(
  dataset: Dataset,
  key: string,
  version: number,
  occurredAt: Date,
  after: DatasetRecord | null,
  op: ChangeEvent['op'] = after === null ? 'DELETE' : version === 1 ? 'CREATE' : 'UPDATE',
): ChangeEvent {
  const common = {
    eventId: uuidv7({ msecs: occurredAt.getTime() }),
    dataset: dataset.id,
    key,
    version,
    occurredAt,
    sourceAgency: dataset.owner,
    traceId: `00-${'1'.repeat(32)}-${'2'.repeat(16)}-01`,
  };
  return op === 'DELETE' || after === null
    ? { ...common, op: 'DELETE', after: null }
    : { ...common, op, after };
}

/**
 * A content checksum of a current-state table: MD5 over every row's key, version, deleted flag and values
 * (bookkeeping of when the row was written left out), in key order.
 */
export async function tableChecksum(pool: Pool, table: string, keyColumn: string): Promise<string> {
  const { rows } = await pool.query<{ sum: string | null; count: string }>(
    `SELECT md5(string_agg((to_jsonb(t) - '_committed_at')::text, E'\\n' ORDER BY t.${quoteIdent(keyColumn)} COLLATE "C")) AS sum,
            count(*)::text AS count
       FROM ${quoteIdent(table)} t`,
  );
  return `${rows[0]!.count}:${rows[0]!.sum ?? 'empty'}`;
}
