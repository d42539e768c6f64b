import { quoteIdent, type PoolClient } from '../../infra/postgres/pool.ts';
import type { HistoryTable } from '../../schemas/postgres/history.ts';

/** What the comparison of one dataset's live and shadow tables found. */
export interface TableComparison {
  /** The current-state table's name (the same in both schemas). */
  table: string;
  /** Current-state rows compared (outside the in-flight keys), live and shadow. */
  liveRows: number;
  shadowRows: number;
  /** md5 over every compared row's content, in key order. */
  liveChecksum: string;
  shadowChecksum: string;
  /**
   * Keys with events the shadow has stored and the live copy not yet: the live sink's batch in flight when the
   * comparison fenced it. They are left out of the comparison (the shadow is ahead, not different); once
   * swapped, the live sink applies those events again and its version guard keeps them as they are.
   */
  inFlightKeys: number;
  /** Keys whose rows differ, or whose live history holds an event the shadow lacks; at most `limit`. */
  differingKeys: string[];
  equal: boolean;
}

/**
 * The columns a row's content is: the dataset's fields and the version-guard columns, not `_committed_at`
 * (when this copy wrote the row, which differs between any two copies).
 */
function contentColumns(history: HistoryTable): string[] {
  return history.current
    .tableColumns()
    .map((column) => column.name)
    .filter((name) => name !== '_committed_at');
}

/**
 * Compares one dataset of the NGDB in two schemas (`live`, `shadow`), as seen by `client`'s transaction: the
 * current-state rows by count and content checksum, and the history by event ids. The fence is the data: keys
 * with events the shadow has and the live copy not (in flight) are left out, so live traffic cannot make two
 * equal copies look different. Lists at most `limit` differing keys.
 */
export async function compareNgdbTable(
  client: PoolClient,
  history: HistoryTable,
  schemas: { live: string; shadow: string },
  limit: number,
): Promise<TableComparison> {
  const live = quoteIdent(schemas.live);
  const shadow = quoteIdent(schemas.shadow);
  const current = quoteIdent(history.current.name);
  const log = quoteIdent(history.name);
  const key = quoteIdent(history.keyColumn);
  const content = contentColumns(history)
    .map((name) => `t.${quoteIdent(name)}`)
    .join(', ');
  const rows = (schema: string): string =>
    `SELECT t.${key}::text AS k, md5(row(${content})::text) AS h FROM ${schema}.${current} t
     WHERE t.${key}::text NOT IN (SELECT k FROM ahead)`;
  const sql = `
WITH ahead AS (
  SELECT DISTINCT s.${key}::text AS k FROM ${shadow}.${log} s
  WHERE NOT EXISTS (SELECT 1 FROM ${live}.${log} l WHERE l._event_id = s._event_id)
),
live_rows AS (${rows(live)}),
shadow_rows AS (${rows(shadow)}),
differing AS (
  SELECT coalesce(l.k, s.k) AS k FROM live_rows l FULL JOIN shadow_rows s ON l.k = s.k
  WHERE l.h IS DISTINCT FROM s.h
  UNION
  SELECT l.${key}::text FROM ${live}.${log} l
  WHERE NOT EXISTS (SELECT 1 FROM ${shadow}.${log} s WHERE s._event_id = l._event_id)
)
SELECT
  (SELECT count(*) FROM live_rows)::int AS live_rows,
  (SELECT count(*) FROM shadow_rows)::int AS shadow_rows,
  (SELECT md5(coalesce(string_agg(k || ':' || h, ',' ORDER BY k), '')) FROM live_rows) AS live_checksum,
  (SELECT md5(coalesce(string_agg(k || ':' || h, ',' ORDER BY k), '')) FROM shadow_rows) AS shadow_checksum,
  (SELECT count(*) FROM ahead)::int AS in_flight,
  (SELECT count(*) FROM differing)::int AS differing_count,
  ARRAY(SELECT k FROM differing ORDER BY k LIMIT $1) AS differing`;
  const { rows: result } = await client.query<{
    live_rows: number;
    shadow_rows: number;
    live_checksum: string;
    shadow_checksum: string;
    in_flight: number;
    differing_count: number;
    differing: string[];
  }>(sql, [limit]);
  const row = result[0]!;
  return {
    table: history.current.name,
    liveRows: row.live_rows,
    shadowRows: row.shadow_rows,
    liveChecksum: row.live_checksum,
    shadowChecksum: row.shadow_checksum,
    inFlightKeys: row.in_flight,
    differingKeys: row.differing,
    equal:
      row.differing_count === 0 &&
      row.live_rows === row.shadow_rows &&
      row.live_checksum === row.shadow_checksum,
  };
}
