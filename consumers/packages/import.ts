import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { copyFrom } from '../../infra/postgres/copy.ts';
import {
  inClientTransaction,
  inTransaction,
  quoteIdent,
  type Pool,
  type PoolClient,
} from '../../infra/postgres/pool.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import { HistoryTable } from '../../schemas/postgres/history.ts';
import { EventStagingTable } from '../../schemas/postgres/staging.ts';
import { prepareSinkTable } from '../sink/evolution.ts';
import { SinkTable } from '../../schemas/postgres/table.ts';
import { readPackageRecords, type ImportTarget, type VerifiedPackage } from './verify.ts';

export interface ImportOptions {
  /** A package {@link verifyPackage} accepted. */
  verified: VerifiedPackage;
  target: ImportTarget;
  /** The target database, its search_path set to the target schema (tables and checkpoint live there). */
  pool: Pool;
  log: Logger;
  /** Records per transaction (and per checkpoint). @default 20000 */
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
  /**
   * Writes the batch (its COPY binary rows) into the target's current state in the caller's transaction, the one
   * that moves the checkpoint: COPYed into the session's staging table, then moved by one INSERT … SELECT.
   * Returns the number of rows changed.
   */
  write(client: PoolClient, rows: Buffer): Promise<number>;
  /**
   * Writes the batch into a table beside the current state (the NGDB's history) in a transaction of a second
   * session, run while {@link write} runs (PostgreSQL works on both at once) and committed before the checkpoint
   * moves. Only idempotent writes belong here: after a failure between the two commits the batch is written again.
   */
  beside?(client: PoolClient, rows: Buffer): Promise<void>;
}

/**
 * Sorts of a batch (one per key, key order, event-id order) stay in memory: at most one batch of rows is in the
 * staging table, so this bounds nothing a default server would not also allow to one sort of its own.
 */
const BATCH_WORK_MEM = '64MB';

/**
 * Loads a verified package with the sinks' versioned upsert: a row changes only when the package's version of
 * it is newer than the stored one, so importing twice, or an older package after a newer one, changes nothing.
 * Into the NGDB, each record also becomes a history row (unique by event id); into an agency, the agreement's
 * table (as its subscriber sink keeps it, revision from the manifest). Resumes after an interruption.
 */
export async function importPackage(options: ImportOptions): Promise<ImportResult> {
  const { verified, pool } = options;
  const { manifest } = verified;
  const staging = new EventStagingTable(verified.dataset);
  const writer = await prepareTarget(options, staging);
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

  // one session for every batch (two when the target has a table beside its current state), each with its own
  // staging table: temporary (per session, not WAL-logged)
  const sessions = [await pool.connect()];
  let broken = false;
  try {
    if (writer.beside) sessions.push(await pool.connect());
    for (const session of sessions) for (const sql of staging.createSql()) await session.query(sql);
    await loadBatches(options, writer, staging, sessions, result);
    for (const session of sessions) await session.query(staging.dropSql());
  } catch (error) {
    broken = true;
    throw error;
  } finally {
    // a failed session (its COPY or connection may be in any state) is closed, and its temporary table with it
    for (const session of sessions) session.release(broken);
  }
  return result;
}

/** Reads the package's records after the checkpoint and commits them batch by batch, checkpoint included. */
async function loadBatches(
  options: ImportOptions,
  writer: TargetWriter,
  staging: EventStagingTable,
  [session, besideSession]: PoolClient[],
  result: ImportResult,
): Promise<void> {
  const { verified } = options;
  const { manifest } = verified;
  const batchSize = options.batchSize ?? 20_000;
  const { resumedFrom } = result;

  // A batch commits while the next one is decoded (and encoded for COPY); the next commit starts only after
  // it (checkpoint order). So memory holds one batch of events and at most two batches of COPY text.
  const commit = async (rows: Buffer, count: number, from: number): Promise<void> => {
    const to = from + count;
    const beside =
      writer.beside && besideSession && count > 0
        ? inClientTransaction(besideSession, async (client) => {
            await client.query(`SET LOCAL work_mem = '${BATCH_WORK_MEM}'`);
            await writer.beside!(client, rows);
          })
        : Promise.resolve();
    beside.catch(() => undefined); // awaited in the transaction below, and after it
    try {
      result.changed += await inClientTransaction(session!, async (client) => {
        await client.query(`SET LOCAL work_mem = '${BATCH_WORK_MEM}'`);
        const changed = count > 0 ? await writer.write(client, rows) : 0;
        await beside; // committed first: the checkpoint never covers rows that are not
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
    } finally {
      await beside.catch(() => undefined); // its session is not left mid-transaction
    }
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
    const rows = staging.copyData(batch);
    if (inFlight) await inFlight;
    inFlight = commit(rows, batch.length, applied);
    inFlight.catch(() => undefined); // awaited before the next commit or at the end; never unhandled meanwhile
    applied += batch.length;
    batch = [];
  }
  if (inFlight) await inFlight;
  await commit(staging.copyData(batch), batch.length, applied); // the rest, and the checkpoint marked finished
}

async function prepareTarget(options: ImportOptions, staging: EventStagingTable): Promise<TargetWriter> {
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
    const direct = staging.copyDirectSql(quoteIdent(history.name));
    return {
      async write(client, rows) {
        await copyFrom(client, staging.copySql(), rows);
        const upserted = await client.query(history.current.upsertFromSql(staging.qualifiedName), [0]);
        return upserted.rowCount ?? 0;
      },
      // unique by event id, so writing a batch's history rows again changes nothing
      beside: (client, rows) => insertHistory(client, history, staging, direct, rows),
    };
  }
  const table = new SinkTable(verified.dataset);
  await prepareSinkTable(pool, table, options.log);
  const revision = verified.manifest.agreement?.revision ?? 0;
  return {
    async write(client, rows) {
      await copyFrom(client, staging.copySql(), rows);
      const upserted = await client.query(table.upsertFromSql(staging.qualifiedName), [revision]);
      return upserted.rowCount ?? 0;
    },
  };
}

/**
 * The batch's history rows, in the fast form where nobody else writes them, inside a savepoint: COPYed straight
 * into the history ({@link EventStagingTable.copyDirectSql}; else a plain {@link HistoryTable.insertNewFromSql}).
 * Where another writer is in the way (a unique violation: an event already in the history, as after a forced
 * re-import, or one the NGDB sink commits meanwhile, or an event id twice in the package; or a deadlock with the
 * sink) it rolls back to the savepoint and moves the staged rows by `INSERT … ON CONFLICT DO NOTHING`, which skips
 * those.
 */
async function insertHistory(
  client: PoolClient,
  history: HistoryTable,
  staging: EventStagingTable,
  /** {@link EventStagingTable.copyDirectSql} into the history, or null. */
  direct: string | null,
  rows: Buffer,
): Promise<void> {
  await client.query('SAVEPOINT lt_history_insert');
  try {
    if (direct) await copyFrom(client, direct, rows);
    else {
      await copyFrom(client, staging.copySql(), rows);
      await client.query(history.insertNewFromSql(staging.qualifiedName));
    }
  } catch (error) {
    if (!RETRY_SAFELY.has(String((error as { code?: unknown }).code))) throw error;
    await client.query('ROLLBACK TO SAVEPOINT lt_history_insert');
    await copyFrom(client, staging.copySql(), rows);
    await client.query(history.insertFromSql(staging.qualifiedName));
  }
  await client.query('RELEASE SAVEPOINT lt_history_insert');
}

/** PostgreSQL's SQLSTATEs after which the `ON CONFLICT` form runs: unique_violation, deadlock_detected. */
const RETRY_SAFELY = new Set(['23505', '40P01']);
