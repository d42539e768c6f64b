import { quoteIdent } from '../../infra/postgres/pool.ts';
import type { ChangeEvent, DatasetRecord, Op } from '../envelope/change-event.ts';
import type { Dataset, Field } from '../model/dataset.ts';
import { fieldColumn, recordValues, SinkTable, stagedValue } from './table.ts';

/** One column of a history table, and how its values travel (`unnest` arrays) and come back (SELECT). */
interface Column {
  name: string;
  sqlType: string;
  /** Nested records and arrays: jsonb, sent as JSON text. */
  json?: boolean;
  /** How a SELECT turns the stored value into the in-memory convention of `RecordValue`. */
  read?: 'date' | 'decimal' | 'long';
}

/** A field's column: the current-state table's type, plus how a SELECT reads it back into memory. */
function dataColumn(field: Field): Column {
  const read =
    field.type === 'long'
      ? 'long'
      : field.type === 'date'
        ? 'date'
        : field.type === 'decimal'
          ? 'decimal'
          : undefined;
  return { ...fieldColumn(field), ...(read ? { read } : {}) };
}

/**
 * Envelope columns of every history row, after the record's own. Field names cannot start with `_`
 * (`FieldName` in schemas/model/dataset.ts), so these never collide with a dataset's fields. A package import
 * stages all but `_provenance` (staging.ts).
 */
export const HISTORY_ENVELOPE: readonly (Column & { constraint: string })[] = [
  { name: '_event_id', sqlType: 'uuid', constraint: 'NOT NULL UNIQUE' },
  { name: '_op', sqlType: 'text', constraint: 'NOT NULL' },
  { name: '_version', sqlType: 'bigint', constraint: 'NOT NULL' },
  { name: '_source_agency', sqlType: 'text', constraint: 'NOT NULL' },
  { name: '_occurred_at', sqlType: 'timestamptz', constraint: 'NOT NULL' },
  { name: '_trace_id', sqlType: 'text', constraint: 'NOT NULL' },
  // SECURITY: the signature proof (lt-signature, lt-key-id, verification result) goes here; null until then.
  { name: '_provenance', sqlType: 'jsonb', constraint: '' },
];

/** A history row as {@link HistoryTable.read} returns it. */
export interface HistoryEntry {
  key: string;
  eventId: string;
  op: Op;
  version: number;
  sourceAgency: string;
  /** When the change happened at the source (the event's `occurredAt`). */
  occurredAt: Date;
  /** When the NGDB stored it (the sink's transaction time). */
  receivedAt: Date;
  traceId: string;
  provenance: unknown;
  /** The record after the change; null for a DELETE. */
  record: DatasetRecord | null;
}

/**
 * The append-only history of one dataset in the NGDB: `<current table>_history`, one row per change event
 * ever received (every version, not collapsed), unique by `_event_id`, so a redelivered event is stored once.
 * Columns: `_seq` (arrival order), the dataset's fields (typed as in the current-state table; null for a
 * DELETE except the key), `_event_id`, `_op`, `_version`, `_source_agency`, `_occurred_at`, `_received_at`,
 * `_trace_id`, `_provenance`.
 */
export class HistoryTable {
  /** The current-state table of the same dataset (versioned upsert, delete-with-version tombstones). */
  readonly current: SinkTable;
  readonly name: string;
  readonly keyColumn: string;
  private readonly dataColumns: Column[];

  readonly dataset: Dataset;

  constructor(dataset: Dataset) {
    this.dataset = dataset;
    this.current = new SinkTable(dataset);
    this.name = `${this.current.name}_history`;
    this.keyColumn = dataset.key.field;
    this.dataColumns = dataset.fields.map(dataColumn);
    quoteIdent(this.name); // refuse a dataset id too long for a PostgreSQL name now, not at the first event
    quoteIdent(`${this.name}_as_of`);
  }

  /**
   * Statements that create the table and its "as of" index, and add the columns of fields the dataset gained
   * since (BACKWARD compatible evolution adds optional fields). Idempotent; run them in one transaction.
   */
  createSql(): string[] {
    const table = quoteIdent(this.name);
    const data = this.dataColumns.map(
      (column) =>
        `${quoteIdent(column.name)} ${column.sqlType}${column.name === this.keyColumn ? ' NOT NULL' : ''}`,
    );
    const meta = HISTORY_ENVELOPE.map((column) =>
      `${quoteIdent(column.name)} ${column.sqlType} ${column.constraint}`.trimEnd(),
    );
    return [
      `CREATE TABLE IF NOT EXISTS ${table} (
  "_seq" bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  ${[...data, ...meta].join(',\n  ')},
  "_received_at" timestamptz NOT NULL DEFAULT now(),
  CHECK ("_op" IN ('CREATE', 'UPDATE', 'DELETE', 'SNAPSHOT'))
)`,
      ...this.dataColumns.map(
        (column) =>
          `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${quoteIdent(column.name)} ${column.sqlType}`,
      ),
      `CREATE INDEX IF NOT EXISTS ${quoteIdent(`${this.name}_as_of`)}
  ON ${table} (${quoteIdent(this.keyColumn)}, "_version" DESC, "_occurred_at" DESC, "_event_id" DESC)`,
    ];
  }

  /**
   * Statements that add the columns of fields the dataset gained to the current-state table, whose
   * `CREATE TABLE IF NOT EXISTS` leaves an existing table as it is.
   */
  evolveCurrentSql(): string[] {
    const table = quoteIdent(this.current.name);
    return this.dataColumns.map(
      (column) =>
        `ALTER TABLE ${table} ADD COLUMN IF NOT EXISTS ${quoteIdent(column.name)} ${column.sqlType}`,
    );
  }

  /**
   * Appends events, one array parameter per column (`unnest` plans once, whatever the batch size). An event
   * whose `_event_id` is already stored is skipped; the row count is the number of rows actually added.
   */
  insertSql(): string {
    const columns = [...this.dataColumns, ...HISTORY_ENVELOPE];
    const names = columns.map((column) => quoteIdent(column.name));
    // numeric(p,s)[] is not a valid cast target; the column's own type applies on insert
    const arrays = columns.map(
      (column, index) => `$${index + 1}::${column.sqlType.replace(/\(.*\)$/, '')}[]`,
    );
    return `INSERT INTO ${quoteIdent(this.name)} (${names.join(', ')})
SELECT * FROM unnest(${arrays.join(', ')})
ON CONFLICT ("_event_id") DO NOTHING`;
  }

  /**
   * {@link insertSql} from a staging table of change events (`EventStagingTable`, schemas/postgres/staging.ts)
   * instead of arrays, in event-id order; `_provenance` stays null.
   */
  insertFromSql(staging: string): string {
    return `${this.insertFromStagingSql(staging, '')}
ON CONFLICT ("_event_id") DO NOTHING`;
  }

  /**
   * {@link insertFromSql} without speculative insertion: the staged events whose id the history has not committed
   * are inserted plainly (a package import spends about a tenth less in PostgreSQL so). It fails with a unique violation
   * (23505) when the staging table holds an event id twice or another transaction commits one of them meanwhile;
   * the caller then rolls back to a savepoint and runs {@link insertFromSql}.
   */
  insertNewFromSql(staging: string): string {
    return this.insertFromStagingSql(
      staging,
      `\n WHERE NOT EXISTS (SELECT FROM ${quoteIdent(this.name)} h WHERE h."_event_id" = s."_event_id")`,
    );
  }

  private insertFromStagingSql(staging: string, where: string): string {
    const columns = [...this.dataColumns, ...HISTORY_ENVELOPE].filter(
      (column) => column.name !== '_provenance',
    );
    const names = columns.map((column) => quoteIdent(column.name));
    return `INSERT INTO ${quoteIdent(this.name)} (${names.join(', ')})
SELECT ${columns.map(stagedValue).join(', ')}
  FROM ${staging} s${where}
 ORDER BY s."_event_id"`;
  }

  /** Column-major parameters for {@link insertSql}, rows in event-id order (a stable lock order). */
  insertParams(events: readonly ChangeEvent[]): unknown[][] {
    const rows = [...events]
      .sort((a, b) => (a.eventId < b.eventId ? -1 : a.eventId > b.eventId ? 1 : 0))
      .map((event) => this.row(event));
    return rows[0] === undefined ? [] : rows[0].map((_, index) => rows.map((row) => row[index] ?? null));
  }

  private row(event: ChangeEvent): unknown[] {
    return [
      ...recordValues(this.dataColumns, this.keyColumn, event),
      event.eventId,
      event.op,
      event.version,
      event.sourceAgency,
      event.occurredAt,
      event.traceId,
      null,
    ];
  }

  /**
   * The SELECT list of a history row in the shape {@link read} expects: dates as 'YYYY-MM-DD', decimals and
   * longs as text (no precision lost on the way), the envelope's timestamps as epoch milliseconds, everything
   * else as node-postgres returns it.
   */
  selectList(alias: string): string {
    const from = quoteIdent(alias);
    const data = this.dataColumns.map((column) => {
      const ref = `${from}.${quoteIdent(column.name)}`;
      const as = quoteIdent(column.name);
      switch (column.read) {
        case 'date':
          return `to_char(${ref}, 'YYYY-MM-DD') AS ${as}`;
        case 'decimal':
        case 'long':
          return `${ref}::text AS ${as}`;
        default:
          return `${ref} AS ${as}`;
      }
    });
    const meta = [
      `${from}."_event_id"::text AS "_event_id"`,
      `${from}."_op" AS "_op"`,
      `${from}."_version"::text AS "_version"`,
      `${from}."_source_agency" AS "_source_agency"`,
      // as milliseconds since the epoch: a number to read, not a timestamp text to parse
      `floor(extract(epoch FROM ${from}."_occurred_at") * 1000)::bigint::text AS "_occurred_at"`,
      `floor(extract(epoch FROM ${from}."_received_at") * 1000)::bigint::text AS "_received_at"`,
      `${from}."_trace_id" AS "_trace_id"`,
      `${from}."_provenance" AS "_provenance"`,
    ];
    return [...data, ...meta].join(', ');
  }

  /** A row selected with {@link selectList}, in the in-memory conventions of a change event. */
  read(row: Record<string, unknown>): HistoryEntry {
    const op = row._op as Op;
    let record: DatasetRecord | null = null;
    if (op !== 'DELETE') {
      record = {};
      for (const column of this.dataColumns) {
        const value = row[column.name];
        record[column.name] =
          column.read === 'long' && value !== null ? Number(value) : (value as DatasetRecord[string]);
      }
    }
    return {
      key: String(row[this.keyColumn]),
      eventId: String(row._event_id),
      op,
      version: Number(row._version),
      sourceAgency: String(row._source_agency),
      occurredAt: new Date(Number(row._occurred_at)),
      receivedAt: new Date(Number(row._received_at)),
      traceId: String(row._trace_id),
      provenance: row._provenance ?? null,
      record,
    };
  }
}
