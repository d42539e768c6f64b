import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import type { Dataset, TypeSpec } from '../../schemas/model/dataset.ts';
import type { BatchResult } from '../publisher/index.ts';
import {
  SNAPSHOT_DEFAULTS,
  snapshotSettings,
  type SnapshotOptions,
  type SnapshotOutcome,
  type SnapshotRefusal,
  type SnapshotResult,
  type SnapshotSettings,
} from './options.ts';

// ─── reading PostgreSQL values as dataset records ──────────────────────────────────────────────────────

const OID = {
  date: 1082,
  dateArray: 1182,
  timestamp: 1114,
  timestampArray: 1115,
  numericArray: 1231,
  int8Array: 1016,
  textArray: 1009,
} as const;

/** pg's own parser for an OID (its typings list only the scalar OIDs). */
const defaultParser = pg.types.getTypeParser as (oid: number, format?: 'text') => (text: string) => unknown;
const parseTextArray = defaultParser(OID.textArray) as (text: string) => (string | null)[];
/** A `timestamp without time zone` names no zone: it is read as UTC (store `timestamptz` to say otherwise). */
const utcTimestamp = (text: string): Date => new Date(`${text.replace(' ', 'T')}Z`);

/**
 * Where pg's default parsers would lose information, scoped to the snapshot's page query (the global
 * `pg.types` stay untouched): a `date` stays the 'YYYY-MM-DD' text PostgreSQL sent (pg would make a Date at
 * local midnight, which is the day before in UTC east of Greenwich), `numeric[]` stays exact text (pg would
 * make floats), `int8[]` stays text (converted per field below).
 */
const PAGE_PARSERS = new Map<number, (text: string) => unknown>([
  [OID.date, (text) => text],
  [OID.dateArray, parseTextArray],
  [OID.timestamp, utcTimestamp],
  [
    OID.timestampArray,
    (text) => parseTextArray(text).map((item) => (item === null ? null : utcTimestamp(item))),
  ],
  [OID.numericArray, parseTextArray],
  [OID.int8Array, parseTextArray],
]);

const PAGE_TYPES: pg.CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: 'text') =>
    PAGE_PARSERS.get(oid) ?? defaultParser(oid, format)) as pg.CustomTypesConfig['getTypeParser'],
};

/**
 * A column value in the record shape the dictionary expects (`schemas/model/dataset.ts`): int8 text → number,
 * a number for a decimal → its text, nested jsonb records and arrays converted field by field. Values that
 * cannot be converted are passed on unchanged, so the publisher's validator refuses them with a reason.
 */
function toRecordValue(spec: TypeSpec, value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (spec.type) {
    case 'int':
    case 'long':
      return typeof value === 'string' && /^-?\d+$/.test(value) ? Number(value) : value;
    case 'decimal':
      return typeof value === 'number' && Number.isFinite(value) ? String(value) : value;
    case 'record': {
      if (typeof value !== 'object' || Array.isArray(value) || value instanceof Date) return value;
      const specs = new Map(spec.fields.map((field) => [field.name, field]));
      return Object.fromEntries(
        Object.entries(value as Record<string, unknown>).map(([name, item]) => {
          const field = specs.get(name);
          return [name, field ? toRecordValue(field, item) : item]; // an unknown field is refused later
        }),
      );
    }
    case 'array':
      return Array.isArray(value) ? value.map((item) => toRecordValue(spec.items, item)) : value;
    default:
      return value;
  }
}

function toVersion(value: unknown): unknown {
  return typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value;
}

// ─── the source table ──────────────────────────────────────────────────────────────────────────────────

/** One row of a page: its key as text (the cursor), its version and the record. */
interface SourceRow {
  key: string | null;
  version: unknown;
  record: Record<string, unknown>;
}

const KEY_ALIAS = '_lt_key';
const VERSION_ALIAS = '_lt_version';

/** The register as the snapshot reads it: keyset pages ordered by the dataset's key column. */
class SourceTable {
  private readonly name: string;
  private readonly key: string;
  private readonly select: string;

  private readonly dataset: Dataset;
  private readonly settings: SnapshotSettings;

  constructor(dataset: Dataset, settings: SnapshotSettings) {
    this.dataset = dataset;
    this.settings = settings;
    this.name = settings.table.split('.').map(quoteIdent).join('.');
    this.key = quoteIdent(dataset.key.field);
    this.select = [
      ...dataset.fields.map((field) => quoteIdent(field.name)),
      `${this.key}::text AS ${KEY_ALIAS}`,
      `${quoteIdent(settings.versionColumn)} AS ${VERSION_ALIAS}`,
    ].join(', ');
  }

  /**
   * Refuses a source that is missing, lacks a column, or holds two rows for one key (keyset pagination
   * would skip the second one silently at a page boundary).
   */
  async check(pool: Pool, log: Logger): Promise<void> {
    const { table } = this.settings;
    const [relation] = (
      await pool.query<{ oid: number | null }>('SELECT to_regclass($1)::oid AS oid', [this.name])
    ).rows;
    const oid = relation?.oid ?? null;
    if (oid === null) {
      throw new LtError('LT_CONFIG_INVALID', `source table ${table} does not exist`, {
        details: { table },
        hint: 'name the table schema-qualified (schema.table) or set the source pool’s search_path',
      });
    }
    const { rows } = await pool.query<{ name: string }>(
      'SELECT attname AS name FROM pg_attribute WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped',
      [oid],
    );
    const present = new Set(rows.map((row) => row.name));
    const needed = [...this.dataset.fields.map((field) => field.name), this.settings.versionColumn];
    const missing = needed.filter((column) => !present.has(column));
    if (missing.length > 0) {
      throw new LtError(
        'LT_CONFIG_INVALID',
        `source table ${table} lacks column(s) ${missing.join(', ')}: a snapshot of ${this.dataset.id} reads one column per field, named after it, plus the version column`,
        {
          details: { table, missing },
          hint: 'point the snapshot at a view that renames the columns, or name the version column (versionColumn)',
        },
      );
    }
    const unique = await pool.query(
      `SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
        WHERE i.indrelid = $1 AND i.indisunique AND i.indnkeyatts = 1 AND i.indpred IS NULL
          AND i.indexprs IS NULL AND a.attname = $2`,
      [oid, this.dataset.key.field],
    );
    if (unique.rowCount !== 0) return;
    log.warn(
      { table, keyField: this.dataset.key.field },
      'source has no unique index on the key; checking it for duplicate keys',
    );
    const duplicates = await pool.query<{ key: string }>(
      `SELECT ${this.key}::text AS key FROM ${this.name} WHERE ${this.key} IS NOT NULL
        GROUP BY ${this.key} HAVING count(*) > 1 ORDER BY ${this.key} LIMIT 5`,
    );
    if (duplicates.rows.length > 0) {
      const keys = duplicates.rows.map((row) => row.key);
      throw new LtError(
        'LT_CONFIG_INVALID',
        `source table ${table} holds more than one row for key(s) ${keys.join(', ')}: a record has exactly one source row`,
        {
          details: { table, keys },
          hint: `resolve the duplicates at the source (a unique index on ${this.dataset.key.field} keeps them out)`,
        },
      );
    }
  }

  /** Rows in the table, rows without a key, and rows at or before the cursor (handled by earlier runs). */
  async count(pool: Pool, after: string | null): Promise<{ total: number; keyless: number; before: number }> {
    const { rows } = await pool.query<{ total: string; keyless: string; before: string }>(
      `SELECT count(*) AS total, count(*) FILTER (WHERE ${this.key} IS NULL) AS keyless,
              count(*) FILTER (WHERE ${this.key} <= $1) AS before
         FROM ${this.name}`,
      [after],
    );
    const row = rows[0];
    return {
      total: Number(row?.total ?? 0),
      keyless: Number(row?.keyless ?? 0),
      before: Number(row?.before ?? 0),
    };
  }

  /** The next page after `after` (from the first key when null), in key order, as records. */
  async page(pool: Pool, after: string | null, size: number): Promise<SourceRow[]> {
    const { rows } = await pool.query<Record<string, unknown>>({
      text:
        after === null
          ? `SELECT ${this.select} FROM ${this.name} WHERE ${this.key} IS NOT NULL ORDER BY ${this.key} LIMIT $1`
          : `SELECT ${this.select} FROM ${this.name} WHERE ${this.key} > $2 ORDER BY ${this.key} LIMIT $1`,
      values: after === null ? [size] : [size, after],
      types: PAGE_TYPES,
    });
    return rows.map((row) => ({
      key: row[KEY_ALIAS] as string | null,
      version: toVersion(row[VERSION_ALIAS]),
      record: Object.fromEntries(
        this.dataset.fields.map((field) => [field.name, toRecordValue(field, row[field.name])]),
      ),
    }));
  }
}

// ─── the checkpoint ────────────────────────────────────────────────────────────────────────────────────

interface Checkpoint {
  lastKey: string | null;
  published: number;
  finished: boolean;
}

/** `lt_snapshot_checkpoint` in the agency's database: where an interrupted snapshot resumes. */
class CheckpointStore {
  private readonly pool: Pool;
  private readonly dataset: string;
  private readonly source: string;

  constructor(pool: Pool, dataset: string, source: string) {
    this.pool = pool;
    this.dataset = dataset;
    this.source = source;
  }

  /** The checkpoint to continue from; a fresh one when none exists or on `restart`. */
  async open(restart: boolean): Promise<Checkpoint> {
    try {
      if (restart) {
        await this.pool.query(
          `INSERT INTO lt_snapshot_checkpoint (dataset, source) VALUES ($1, $2)
           ON CONFLICT (dataset, source) DO UPDATE SET last_key = NULL, published = 0, started_at = now(),
             updated_at = now(), finished_at = NULL`,
          [this.dataset, this.source],
        );
        return { lastKey: null, published: 0, finished: false };
      }
      await this.pool.query(
        `INSERT INTO lt_snapshot_checkpoint (dataset, source) VALUES ($1, $2) ON CONFLICT DO NOTHING`,
        [this.dataset, this.source],
      );
      const { rows } = await this.pool.query<{
        last_key: string | null;
        published: string;
        finished_at: Date | null;
      }>(
        'SELECT last_key, published, finished_at FROM lt_snapshot_checkpoint WHERE dataset = $1 AND source = $2',
        [this.dataset, this.source],
      );
      const row = rows[0];
      return {
        lastKey: row?.last_key ?? null,
        published: Number(row?.published ?? 0),
        finished: Boolean(row?.finished_at),
      };
    } catch (cause) {
      if ((cause as { code?: string }).code === '42P01') {
        throw new LtError(
          'LT_CONFIG_INVALID',
          'the checkpoint database has no lt_snapshot_checkpoint table',
          {
            cause,
            hint: "run the Agent Node's migrations on it: migrate(pool, 'agent')",
          },
        );
      }
      throw cause;
    }
  }

  /** Records a page the broker acknowledged; returns the events published overall. */
  async advance(lastKey: string, published: number): Promise<number> {
    const { rows } = await this.pool.query<{ published: string }>(
      `UPDATE lt_snapshot_checkpoint SET last_key = $3, published = published + $4, updated_at = now()
        WHERE dataset = $1 AND source = $2 RETURNING published`,
      [this.dataset, this.source, lastKey, published],
    );
    return Number(rows[0]?.published ?? 0);
  }

  async finish(): Promise<void> {
    await this.pool.query(
      `UPDATE lt_snapshot_checkpoint SET finished_at = now(), updated_at = now()
        WHERE dataset = $1 AND source = $2`,
      [this.dataset, this.source],
    );
  }
}

// ─── the run ───────────────────────────────────────────────────────────────────────────────────────────

/**
 * Publishes an existing register as SNAPSHOT events: reads the source table page by page in key order
 * (`WHERE key > $last ORDER BY key LIMIT n`, each page its own short statement), publishes each page through
 * the Agent Node's publisher (`partial`: a refused row does not hold back the others), and only after the
 * broker's acknowledgement stores the page's last key in `lt_snapshot_checkpoint`. A new run continues after
 * that key; a run that reaches the end records `finished_at`.
 *
 * Each row is published at the version it has when its page is read. Live changes made meanwhile are
 * published by the live path (SDK, outbox relay) at higher versions; whichever arrives first, the version
 * ledger and the sinks' version guard keep the newest (docs/snapshot.md gives the whole argument).
 *
 * Throws an LtError for a problem with the whole run (not the owner, source table missing a column, duplicate
 * keys, broker not acknowledging after retries); the checkpoint then holds the last acknowledged page.
 */
export async function runSnapshot(options: SnapshotOptions): Promise<SnapshotResult> {
  const settings = snapshotSettings(options);
  const { publisher, dataset, source, signal } = options;
  const started = performance.now();
  publisher.datasetFor(dataset.id); // not the owner: refuse before reading anything
  const log = options.log.child({ component: 'snapshot', dataset: dataset.id, source: settings.table });
  const table = new SourceTable(dataset, settings);
  await table.check(source.pool, log);
  const checkpoints = new CheckpointStore(options.checkpoint, dataset.id, settings.table);
  const checkpoint = await checkpoints.open(options.restart ?? false);

  const result: SnapshotResult = {
    dataset: dataset.id,
    source: settings.table,
    outcome: 'aborted',
    resumedAfter: checkpoint.lastKey,
    total: 0,
    read: 0,
    published: 0,
    publishedOverall: checkpoint.published,
    superseded: 0,
    refused: 0,
    refusals: [],
    elapsedMs: 0,
  };
  const finish = (outcome: SnapshotOutcome): SnapshotResult => {
    result.outcome = outcome;
    result.elapsedMs = Math.round(performance.now() - started);
    log.info(
      {
        outcome,
        read: result.read,
        published: result.published,
        superseded: result.superseded,
        refused: result.refused,
        elapsedMs: result.elapsedMs,
      },
      'snapshot run ended',
    );
    return result;
  };
  const refuse = (refusal: SnapshotRefusal, rows = 1): void => {
    result.refused += rows;
    if (result.refusals.length < SNAPSHOT_DEFAULTS.reportedRefusals) result.refusals.push(refusal);
    // the key and the reason (which names the key) go to the run's report, never to a log
    log.warn({ code: refusal.code, rows }, 'row refused (its key and reason are in the snapshot report)');
  };

  if (checkpoint.finished) {
    log.info({ published: checkpoint.published }, 'snapshot already finished; pass restart to read again');
    return finish('already-finished');
  }

  const counts = await table.count(source.pool, checkpoint.lastKey);
  result.total = counts.total;
  let done = counts.before;
  if (counts.keyless > 0) {
    refuse(
      {
        key: null,
        code: 'LT_RECORD_INVALID',
        message: `${counts.keyless} row(s) have no ${dataset.key.field} (NULL): a record cannot be published without its identification key`,
      },
      counts.keyless,
    );
    done += counts.keyless;
  }
  log.info({ total: counts.total, resumedAfter: checkpoint.lastKey }, 'snapshot run started');

  const report = (): void => {
    if (!options.onProgress) return;
    const seconds = (performance.now() - started) / 1000;
    const rate = seconds > 0 ? result.read / seconds : 0;
    const total = Math.max(result.total, done);
    try {
      options.onProgress({
        done,
        total,
        ratePerSecond: rate,
        etaSeconds: rate > 0 ? (total - done) / rate : null,
      });
    } catch (error) {
      log.warn({ err: error }, 'onProgress threw; the snapshot continues');
    }
  };
  report();

  let cursor = checkpoint.lastKey;
  for (;;) {
    if (signal?.aborted) return finish('aborted');
    const page = await table.page(source.pool, cursor, settings.batchSize);
    if (page.length === 0) break;
    const changes = page.map((row) => ({ op: 'SNAPSHOT', after: row.record, version: row.version }));
    const batch = await publishPage(options, changes, log);
    if (batch === null) return finish('aborted'); // stopped while waiting to retry: the page is read again
    for (const outcome of batch.outcomes) {
      if (outcome.status === 'accepted') continue;
      const row = page[outcome.index];
      const version = row?.version;
      // The ledger says a version at least as high was published for the key, by a live change or an earlier
      // run. (A stale refusal without lastPublished would be a duplicate key within the page: refused.)
      if (
        outcome.code === 'LT_VERSION_STALE' &&
        outcome.lastPublished !== undefined &&
        typeof version === 'number' &&
        outcome.lastPublished >= version
      ) {
        result.superseded += 1;
        continue;
      }
      refuse({ key: outcome.key ?? row?.key ?? null, code: outcome.code, message: outcome.message });
    }
    cursor = page[page.length - 1]!.key!; // the page query skips NULL keys
    result.publishedOverall = await checkpoints.advance(cursor, batch.accepted);
    result.published += batch.accepted;
    result.read += page.length;
    done += page.length;
    log.debug({ lastKey: cursor, accepted: batch.accepted, rows: page.length }, 'snapshot page published');
    report();
    if (page.length < settings.batchSize) break;
  }
  await checkpoints.finish();
  return finish('finished');
}

/**
 * One page through the publisher, retried with backoff while the failure is retriable (the broker did not
 * acknowledge; the ledger was not advanced, so publishing the same versions again is safe). Null when the
 * signal stops the wait between attempts.
 */
async function publishPage(
  { publisher, dataset, signal }: SnapshotOptions,
  changes: unknown[],
  log: Logger,
): Promise<BatchResult | null> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await publisher.publishBatch(dataset.id, changes, { partial: true });
    } catch (error) {
      if (!(error instanceof LtError) || !error.retriable || attempt >= SNAPSHOT_DEFAULTS.publishAttempts)
        throw error;
      const waitMs = SNAPSHOT_DEFAULTS.retryBackoffMs * 2 ** (attempt - 1);
      log.warn({ code: error.code, attempt, waitMs }, 'snapshot page not acknowledged; retrying');
      await sleep(waitMs, undefined, signal ? { signal } : {}).catch(() => undefined);
      if (signal?.aborted) return null;
    }
  }
}
