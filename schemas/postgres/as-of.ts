import { quoteIdent, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import type { DatasetRecord } from '../envelope/change-event.ts';
import type { Dataset } from '../model/dataset.ts';
import { HistoryTable, type HistoryEntry } from './history.ts';

/** Where the queries run: a pool or a client, its search_path set to the NGDB schema. */
export type Queryable = Pool | PoolClient;

/** A record as it was at a point in time, with the event that made it so. */
export type RecordAsOf = HistoryEntry & { op: 'CREATE' | 'UPDATE' | 'SNAPSHOT'; record: DatasetRecord };

export interface DatasetAsOfOptions {
  /** Most records returned, in key order. Default 1,000. */
  limit?: number;
  /** Start after this key (the last key of the previous page). */
  afterKey?: string;
}

/*
 * "As of T" is decided by source time, never by arrival: among the history rows of a key whose
 * `_occurred_at <= T`, the one with the highest `_version` wins (versions order changes at the source;
 * `_occurred_at` is a wall clock that can disagree with them after a failover). Equal versions — which a
 * correct source never sends — fall back to the later `_occurred_at`, then the larger `_event_id`, so the
 * answer never depends on `_received_at` or `_seq` and a rebuilt NGDB answers exactly like the live one.
 * With T after every change this is the row the current-state table holds (same version guard).
 * Qualified by the alias `h`: the SELECT list renames `_version` to text, which would sort "10" before "9".
 */
const ORDER = `h."_version" DESC, h."_occurred_at" DESC, h."_event_id" DESC`;

function asOf(entry: HistoryEntry): RecordAsOf | null {
  return entry.op === 'DELETE' || entry.record === null ? null : (entry as RecordAsOf);
}

/**
 * The record `key` of `dataset` as it was at `at` (source time, inclusive): null when it did not exist yet,
 * or its latest change by then was a DELETE.
 */
export async function stateAsOf(
  db: Queryable,
  dataset: Dataset,
  key: string,
  at: Date,
): Promise<RecordAsOf | null> {
  const history = new HistoryTable(dataset);
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${history.selectList('h')}
       FROM ${quoteIdent(history.name)} h
      WHERE h.${quoteIdent(history.keyColumn)} = $1 AND h."_occurred_at" <= $2
      ORDER BY ${ORDER}
      LIMIT 1`,
    [key, at],
  );
  return rows[0] ? asOf(history.read(rows[0])) : null;
}

/**
 * Every record of `dataset` that existed at `at` (source time, inclusive), in key order, one page at a time:
 * `DISTINCT ON (key)` picks each key's state by the rule above, then deleted keys are left out.
 */
export async function datasetAsOf(
  db: Queryable,
  dataset: Dataset,
  at: Date,
  options: DatasetAsOfOptions = {},
): Promise<RecordAsOf[]> {
  const entries = await latestChanges(db, dataset, at, options, false);
  return entries.map(asOf).filter((entry) => entry !== null);
}

/**
 * Each key's latest change by `at` (source time, inclusive), by the rule above, in key order, one page at a
 * time — DELETEs included (`record` null), so a copy made from them can apply the deletion too (packages).
 */
export async function latestChangesAsOf(
  db: Queryable,
  dataset: Dataset,
  at: Date,
  options: DatasetAsOfOptions = {},
): Promise<HistoryEntry[]> {
  return latestChanges(db, dataset, at, options, true);
}

async function latestChanges(
  db: Queryable,
  dataset: Dataset,
  at: Date,
  { limit = 1_000, afterKey }: DatasetAsOfOptions,
  withDeletes: boolean,
): Promise<HistoryEntry[]> {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be ≥ 1 (got ${limit})`);
  const history = new HistoryTable(dataset);
  const key = quoteIdent(history.keyColumn);
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT * FROM (
       SELECT DISTINCT ON (h.${key}) ${history.selectList('h')}
         FROM ${quoteIdent(history.name)} h
        WHERE h."_occurred_at" <= $1 AND ($3::text IS NULL OR h.${key} > $3)
        ORDER BY h.${key}, ${ORDER}
     ) latest
     WHERE $4 OR latest."_op" <> 'DELETE'
     ORDER BY latest.${key}
     LIMIT $2`,
    [at, limit, afterKey ?? null, withDeletes],
  );
  return rows.map((row) => history.read(row));
}

/** Every change of one record the NGDB holds, oldest version first (DELETEs included, `record` null). */
export async function historyOf(db: Queryable, dataset: Dataset, key: string): Promise<HistoryEntry[]> {
  const history = new HistoryTable(dataset);
  const { rows } = await db.query<Record<string, unknown>>(
    `SELECT ${history.selectList('h')}
       FROM ${quoteIdent(history.name)} h
      WHERE h.${quoteIdent(history.keyColumn)} = $1
      ORDER BY h."_version", h."_occurred_at", h."_event_id"`,
    [key],
  );
  return rows.map((row) => history.read(row));
}
