import { createHash } from 'node:crypto';
import { quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import { datasetAsOf, stateAsOf } from '../../schemas/postgres/as-of.ts';
import { HistoryTable, type HistoryEntry } from '../../schemas/postgres/history.ts';
import type { DatasetRecord } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';

/** A record the NGDB holds, with the change event that made it so. */
export type StoredRecord = HistoryEntry & { record: DatasetRecord };

/*
 * Reads of the NGDB's tables (the NGDB sink's schema, `schemas/postgres/`). The current state is the
 * current-state table's row joined to the history row of the event that wrote it (`_event_id`, unique): the
 * history row holds the same values plus the source agency, in the in-memory conventions of a change event.
 * A past state is the "as of" rule of schemas/postgres/as-of.ts.
 */

function stored(entry: HistoryEntry | null): StoredRecord | null {
  return entry && entry.op !== 'DELETE' && entry.record !== null ? (entry as StoredRecord) : null;
}

/** The record `key` now, or at `asOf`; null when there is none (never existed, or deleted by then). */
export async function readOne(
  ngdb: Pool,
  dataset: Dataset,
  key: string,
  asOf: Date | null,
): Promise<StoredRecord | null> {
  if (asOf) return stateAsOf(ngdb, dataset, key, asOf);
  const { history, statement } = currentRead(dataset);
  const { rows } = await ngdb.query<Record<string, unknown>>({ ...statement, values: [key] });
  return rows[0] ? stored(history.read(rows[0])) : null;
}

const currentReads = new WeakMap<
  Dataset,
  { history: HistoryTable; statement: { name: string; text: string } }
>();

/**
 * The current-state read of one key, as a named (prepared) statement: the query API's hot path, where parsing
 * and planning the statement each time cost PostgreSQL more than running it. Named after a hash of its text,
 * so another dataset's, or another version's, is another statement.
 */
function currentRead(dataset: Dataset): { history: HistoryTable; statement: { name: string; text: string } } {
  let read = currentReads.get(dataset);
  if (!read) {
    const history = new HistoryTable(dataset);
    const text = `SELECT ${history.selectList('h')}
       FROM ${quoteIdent(history.current.name)} c JOIN ${quoteIdent(history.name)} h ON h."_event_id" = c."_event_id"
      WHERE c.${quoteIdent(history.keyColumn)} = $1 AND NOT c."_deleted"`;
    const name = `lt-query-one-${createHash('sha256').update(text).digest('hex').slice(0, 16)}`;
    read = { history, statement: { name, text } };
    currentReads.set(dataset, read);
  }
  return read;
}

/** Up to `limit` records in key order after `afterKey`, now or at `asOf`. */
export async function readPage(
  ngdb: Pool,
  dataset: Dataset,
  asOf: Date | null,
  limit: number,
  afterKey: string | undefined,
): Promise<StoredRecord[]> {
  if (asOf) return datasetAsOf(ngdb, dataset, asOf, { limit, ...(afterKey ? { afterKey } : {}) });
  const history = new HistoryTable(dataset);
  const key = quoteIdent(history.keyColumn);
  const { rows } = await ngdb.query<Record<string, unknown>>(
    `SELECT ${history.selectList('h')}
       FROM ${quoteIdent(history.current.name)} c JOIN ${quoteIdent(history.name)} h ON h."_event_id" = c."_event_id"
      WHERE NOT c."_deleted" AND ($2::text IS NULL OR c.${key} > $2)
      ORDER BY c.${key}
      LIMIT $1`,
    [limit, afterKey ?? null],
  );
  return rows.map((row) => stored(history.read(row))).filter((entry) => entry !== null);
}
