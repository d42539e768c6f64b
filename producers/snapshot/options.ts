import { z } from 'zod';
import { LtError, type ErrorCode } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { Publisher } from '../publisher/index.ts';

/** The agency's register the snapshot reads. */
export interface SnapshotSource {
  /** A pool on the agency's database holding the register. Read with short queries, one per page. */
  pool: Pool;
  /**
   * The table (or view), optionally schema-qualified: `citizens` or `registry.citizens`. Each part must be a
   * plain lower-case SQL identifier. Its columns are named after the dataset's fields, plus the version column.
   */
  table: string;
  /**
   * The column holding each row's current version: a whole number ≥ 1 that the agency's system raises on
   * every change of the row, in the same transaction as the change. Default `version`.
   */
  versionColumn?: string;
}

/** Reported after each page once its checkpoint is stored. */
export interface SnapshotProgress {
  /** Rows handled so far, earlier interrupted runs included (published, superseded or refused). */
  done: number;
  /** Rows in the source when this run started (never below `done`). */
  total: number;
  /** Rows handled per second by this run. */
  ratePerSecond: number;
  /** Seconds left at the current rate; null until a rate is known. */
  etaSeconds: number | null;
}

export interface SnapshotOptions {
  /** The Agent Node's publish path; must belong to the dataset's owner agency. */
  publisher: Publisher;
  /** The dataset the register holds; its key field orders the read. */
  dataset: Dataset;
  source: SnapshotSource;
  /** The agency's own database with the Agent Node's tables (`lt_snapshot_checkpoint`, migration set `agent`). */
  checkpoint: Pool;
  /** Rows per page, i.e. per published batch and per checkpoint. Default 2000. */
  batchSize?: number;
  /** Start from the first key, ignoring (and resetting) the checkpoint of an earlier run. Default false. */
  restart?: boolean;
  /** Stops the run after the page in flight has been published and checkpointed; the next run resumes. */
  signal?: AbortSignal;
  /** Called after each page (and once at the start). An exception thrown here is logged, not propagated. */
  onProgress?: (progress: SnapshotProgress) => void;
  log: Logger;
}

/** One row the snapshot could not publish, with the publisher's reason. */
export interface SnapshotRefusal {
  /** The row's key, or null for a row without one. */
  key: string | null;
  code: ErrorCode;
  message: string;
}

export type SnapshotOutcome =
  /** Every row up to the end of the table was handled; the checkpoint records `finished_at`. */
  | 'finished'
  /** The signal stopped the run; the checkpoint holds the last key published. */
  | 'aborted'
  /** The checkpoint says an earlier run finished; nothing was read (pass `restart` to read again). */
  | 'already-finished';

export interface SnapshotResult {
  dataset: string;
  /** The source table as given. */
  source: string;
  outcome: SnapshotOutcome;
  /** The key this run continued after (from the checkpoint), or null when it started from the first. */
  resumedAfter: string | null;
  /** Rows in the source when the run started (0 when `already-finished`: nothing is counted). */
  total: number;
  /** Rows this run read. */
  read: number;
  /** SNAPSHOT events of this run the broker acknowledged. */
  published: number;
  /** Events acknowledged across all runs of this snapshot (the checkpoint's count). */
  publishedOverall: number;
  /**
   * Rows not published because a version at least as high was already published for the key: a live
   * change overtook the snapshot (or an earlier run published this version). Not an error.
   */
  superseded: number;
  /** Rows refused (invalid record, no key, version not a whole number ≥ 1, too large …). */
  refused: number;
  /** The first refusals with their reasons (at most {@link SNAPSHOT_DEFAULTS.reportedRefusals}); all are logged. */
  refusals: SnapshotRefusal[];
  elapsedMs: number;
}

export const SNAPSHOT_DEFAULTS = {
  batchSize: 2000,
  versionColumn: 'version',
  /** How many refusals the result lists; every refusal is logged. */
  reportedRefusals: 20,
  /** Attempts per page when the broker does not acknowledge (a retriable LtError). */
  publishAttempts: 5,
  /** First wait between attempts; doubles each time. */
  retryBackoffMs: 500,
} as const;

const NAME = '[a-z_][a-z0-9_]{0,62}';
const IDENTIFIER = new RegExp(`^${NAME}$`);
const TABLE = new RegExp(`^${NAME}(\\.${NAME})?$`);

const SettingsSchema = z.object({
  table: z
    .string()
    .regex(TABLE, 'table must be a lower-case SQL identifier, optionally schema-qualified (schema.table)'),
  versionColumn: z.string().regex(IDENTIFIER, 'versionColumn must be a lower-case SQL identifier'),
  batchSize: z
    .number()
    .int('batchSize must be a whole number')
    .min(1, 'batchSize must be ≥ 1')
    .max(50_000, 'batchSize must be ≤ 50,000'),
});

export type SnapshotSettings = z.infer<typeof SettingsSchema>;

/** The options with defaults applied, checked once; an error names the option and the rule. */
export function snapshotSettings(options: SnapshotOptions): SnapshotSettings {
  const parsed = SettingsSchema.safeParse({
    table: options.source.table,
    versionColumn: options.source.versionColumn ?? SNAPSHOT_DEFAULTS.versionColumn,
    batchSize: options.batchSize ?? SNAPSHOT_DEFAULTS.batchSize,
  });
  if (parsed.success) return parsed.data;
  throw new LtError(
    'LT_CONFIG_INVALID',
    parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; '),
  );
}
