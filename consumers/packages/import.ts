import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { inTransaction, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import { HistoryTable } from '../../schemas/postgres/history.ts';
import { prepareSinkTable } from '../sink/evolution.ts';
import { SinkTable, type SinkRow } from '../../schemas/postgres/table.ts';
import { readPackageRecords, type ImportTarget, type VerifiedPackage } from './verify.ts';

export interface ImportOptions {
  /** A package {@link verifyPackage} accepted. */
  verified: VerifiedPackage;
  target: ImportTarget;
  /** The target database, its search_path set to the target schema (tables and checkpoint live there). */
  pool: Pool;
  log: Logger;
  /** Records per transaction (and per checkpoint). @default 5000 */
  batchSize?: number;
  /**
   * Called after every committed batch. A throw stops the import there (what a person's Ctrl-C or a crash
   * does); the committed batches stay, and the next import of the package resumes after them.
   */
  onProgress?: (progress: ImportProgress) => void | Promise<void>;
}

export interface ImportProgress {
  /** Records of the package applied so far (this run and earlier ones). */
  applied: number;
  total: number;
  /** Records an earlier, interrupted run had applied (skipped now). */
  resumedFrom: number;
}

export interface ImportResult {
  packageId: string;
  records: number;
  /** An earlier run finished this package: nothing was done. */
  alreadyImported: boolean;
  resumedFrom: number;
  /** Rows the versioned upsert changed (the others were already as new or newer). */
  changed: number;
}

/**
 * The checkpoint of imports into one target schema: per package, how many of its records are applied. Each
 * batch moves it in the batch's own transaction, so a restart skips exactly what was applied.
 */
const CHECKPOINT_SQL = `CREATE TABLE IF NOT EXISTS lt_package_import (
  package_id      uuid PRIMARY KEY,
  dataset         text NOT NULL,
  records_total   bigint NOT NULL,
  records_applied bigint NOT NULL DEFAULT 0,
  started_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  finished_at     timestamptz
)`;

/** How one batch is written into a target's tables. */
interface TargetWriter {
  /** Writes the batch; returns the number of current-state rows changed. */
  write(client: PoolClient, events: ChangeEvent[]): Promise<number>;
}

/**
 * Loads a verified package with the sinks' versioned upsert: a row changes only when the package's version of
 * it is newer than the stored one, so importing twice, or an older package after a newer one, changes nothing.
 * Into the NGDB, each record also becomes a history row (unique by event id); into an agency, the agreement's
 * table (as its subscriber sink keeps it, revision from the manifest). Resumes after an interruption.
 */
export async function importPackage(options: ImportOptions): Promise<ImportResult> {
  const { verified, pool } = options;
  const { manifest } = verified;
  const batchSize = options.batchSize ?? 5_000;
  const writer = await prepareTarget(options);
  await pool.query(CHECKPOINT_SQL);
  await pool.query(
    `INSERT INTO lt_package_import (package_id, dataset, records_total) VALUES ($1, $2, $3)
     ON CONFLICT (package_id) DO NOTHING`,
    [manifest.packageId, manifest.dataset, manifest.records],
  );
  const { rows } = await pool.query<{ applied: string; finished: boolean }>(
    `SELECT records_applied::text AS applied, finished_at IS NOT NULL AS finished
       FROM lt_package_import WHERE package_id = $1`,
    [manifest.packageId],
  );
  const resumedFrom = Number(rows[0]!.applied);
  const result: ImportResult = {
    packageId: manifest.packageId,
    records: manifest.records,
    alreadyImported: rows[0]!.finished,
    resumedFrom,
    changed: 0,
  };
  if (result.alreadyImported) return result;
  if (resumedFrom > 0)
    options.log.info({ packageId: manifest.packageId, resumedFrom }, 'resuming an interrupted import');

  // A batch commits while the next one is decoded; the next commit starts only after it (checkpoint order).
  const commit = async (events: ChangeEvent[], from: number): Promise<void> => {
    const to = from + events.length;
    result.changed += await inTransaction(pool, async (client) => {
      const changed = events.length > 0 ? await writer.write(client, events) : 0;
      const moved = await client.query(
        `UPDATE lt_package_import
            SET records_applied = $2, updated_at = now(),
                finished_at = CASE WHEN $2 = records_total THEN now() END
          WHERE package_id = $1 AND records_applied = $3`,
        [manifest.packageId, to, from],
      );
      if (moved.rowCount !== 1)
        throw new LtError(
          'LT_PACKAGE_IMPORT_BUSY',
          `another import of package ${manifest.packageId} moved its checkpoint`,
          { hint: 'let the other import finish; then this one has nothing left to do' },
        );
      return changed;
    });
    await options.onProgress?.({ applied: to, total: manifest.records, resumedFrom });
  };
  let applied = resumedFrom;
  let inFlight: Promise<void> | null = null;
  let position = 0;
  let batch: ChangeEvent[] = [];
  for await (const event of readPackageRecords(verified)) {
    if (position++ < resumedFrom) continue;
    batch.push(event);
    if (batch.length < batchSize) continue;
    if (inFlight) await inFlight;
    inFlight = commit(batch, applied);
    inFlight.catch(() => undefined); // awaited before the next commit or at the end; never unhandled meanwhile
    applied += batch.length;
    batch = [];
  }
  if (inFlight) await inFlight;
  await commit(batch, applied); // the rest, and the checkpoint marked finished
  return result;
}

/** One row per key, the highest version (a package has one per key; a batch must not touch a row twice). */
function latestPerKey(events: readonly ChangeEvent[]): ChangeEvent[] {
  const latest = new Map<string, ChangeEvent>();
  for (const event of events) {
    const current = latest.get(event.key);
    if (!current || event.version > current.version) latest.set(event.key, event);
  }
  return [...latest.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
}

async function prepareTarget(options: ImportOptions): Promise<TargetWriter> {
  const { verified, pool } = options;
  if (options.target.kind === 'ngdb') {
    const history = new HistoryTable(verified.fullDataset);
    await inTransaction(pool, async (client) => {
      // the NGDB sink takes the same lock before its DDL (concurrent CREATE TABLE IF NOT EXISTS can collide)
      await client.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lt_ngdb_ddl'))`);
      await client.query(history.current.createSql());
      for (const sql of history.evolveCurrentSql()) await client.query(sql);
      for (const sql of history.createSql()) await client.query(sql);
    });
    return {
      async write(client, events) {
        await client.query(history.insertSql(), history.insertParams(events));
        const rows: SinkRow[] = latestPerKey(events).map((event) => history.current.row(event));
        const upserted = await client.query(history.current.upsertSql(), history.current.upsertParams(rows));
        return upserted.rowCount ?? 0;
      },
    };
  }
  const table = new SinkTable(verified.dataset);
  await prepareSinkTable(pool, table, options.log);
  const revision = verified.manifest.agreement?.revision ?? 0;
  return {
    async write(client, events) {
      const rows = latestPerKey(events).map((event) => table.row(event, revision));
      const upserted = await client.query(table.upsertSql(), table.upsertParams(rows));
      return upserted.rowCount ?? 0;
    },
  };
}
