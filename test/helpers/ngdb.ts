import { randomUUID } from 'node:crypto';
import { inTransaction, type Pool } from '../../infra/postgres/pool.ts';
import type { ChangeEvent, DatasetRecord } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { HistoryTable } from '../../schemas/postgres/history.ts';

/** Creates the NGDB tables of `dataset` in the pool's schema, as the NGDB sink does at start. */
export async function createNgdbTables(pool: Pool, dataset: Dataset): Promise<HistoryTable> {
  const history = new HistoryTable(dataset);
  await inTransaction(pool, async (client) => {
    await client.query(history.current.createSql());
    for (const sql of history.evolveCurrentSql()) await client.query(sql);
    for (const sql of history.createSql()) await client.query(sql);
  });
  return history;
}

/**
 * Writes events into the NGDB tables with the NGDB sink's own statements (consumers/ngdb/ngdb-sink.ts
 * `transaction`): every event into the history, the newest per key through the versioned upsert.
 */
export async function writeNgdb(
  pool: Pool,
  history: HistoryTable,
  events: readonly ChangeEvent[],
): Promise<void> {
  await inTransaction(pool, async (client) => {
    await client.query(history.insertSql(), history.insertParams(events));
    const latest = new Map<string, ChangeEvent>();
    for (const event of events) {
      const current = latest.get(event.key);
      if (!current || event.version > current.version) latest.set(event.key, event);
    }
    const rows = [...latest.values()]
      .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
      .map((event) => history.current.row(event));
    await client.query(history.current.upsertSql(), history.current.upsertParams(rows));
  });
}

/** A change event of `dataset` from its owner. */
export function ngdbEvent(
  dataset: Dataset,
  key: string,
  version: number,
  occurredAt: Date,
  after: DatasetRecord | null,
): ChangeEvent {
  const common = {
    eventId: randomUUID(),
    dataset: dataset.id,
    key,
    version,
    occurredAt,
    sourceAgency: dataset.owner,
    traceId: randomUUID().replace(/-/g, ''),
  };
  return after === null
    ? { ...common, op: 'DELETE', after: null }
    : { ...common, op: version === 1 ? 'CREATE' : 'UPDATE', after };
}
