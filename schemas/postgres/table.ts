import { quoteIdent } from '../../infra/postgres/pool.ts';
import type { Dataset, Field } from '../model/dataset.ts';

/** One column of a sink table and the array type its values travel in for `unnest`. */
export interface Column {
  name: string;
  sqlType: string;
  /** Nested records and arrays are stored as jsonb and travel as JSON text. */
  json?: boolean;
}

/** The PostgreSQL column of a field; shared by every table that stores records (sink, NGDB history). */
export function fieldColumn(field: Field): Column {
  switch (field.type) {
    case 'string':
    case 'code':
      return { name: field.name, sqlType: 'text' };
    case 'int':
      return { name: field.name, sqlType: 'integer' };
    case 'long':
      return { name: field.name, sqlType: 'bigint' };
    case 'boolean':
      return { name: field.name, sqlType: 'boolean' };
    case 'date':
      return { name: field.name, sqlType: 'date' };
    case 'timestamp':
      return { name: field.name, sqlType: 'timestamptz' };
    case 'decimal':
      return { name: field.name, sqlType: `numeric(${field.precision},${field.scale})` };
    case 'record':
    case 'array':
      return { name: field.name, sqlType: 'jsonb', json: true };
  }
}

/**
 * The values of a record's columns, in column order, as the `unnest` arrays carry them: the event key for
 * the key column, null for every other column of a DELETE, nested values as JSON text.
 */
export function recordValues(
  columns: readonly Column[],
  keyColumn: string,
  event: { key: string; after: Record<string, unknown> | null },
): unknown[] {
  return columns.map((column) => {
    if (column.name === keyColumn) return event.key;
    const value = event.after ? (event.after[column.name] ?? null) : null;
    return column.json && value !== null ? JSON.stringify(value) : value;
  });
}

/**
 * A column of a staging table of change events (`EventStagingTable`, schemas/postgres/staging.ts) as an
 * INSERT … SELECT from it (alias `s`) reads it: numeric(p,s) is staged as its decimal text and cast here, so
 * the target column's own type applies (as with `unnest`'s numeric[]).
 */
export function stagedValue(column: { name: string; sqlType: string }): string {
  const ref = `s.${quoteIdent(column.name)}`;
  return column.sqlType.startsWith('numeric') ? `${ref}::numeric` : ref;
}

/**
 * Bookkeeping columns every sink table has, after the dataset's own, in the order {@link SinkTable.row}
 * returns their values. `_revision` is the sharing agreement's revision the row came from (0 outside
 * agreements); the guard orders rows by (revision, version).
 */
const META: Column[] = [
  { name: '_version', sqlType: 'bigint' },
  { name: '_deleted', sqlType: 'boolean' },
  { name: '_event_id', sqlType: 'uuid' },
  { name: '_op', sqlType: 'text' },
  { name: '_occurred_at', sqlType: 'timestamptz' },
  { name: '_revision', sqlType: 'integer' },
];

/** Constraints of the meta columns; a column that is not named here is nullable and has no default. */
const META_CONSTRAINTS: Record<string, string> = {
  _version: 'NOT NULL',
  _deleted: 'NOT NULL',
  _revision: 'NOT NULL DEFAULT 0',
};

/** A row ready for the upsert: the record's values (null for a DELETE) plus the meta columns, in order. */
export type SinkRow = unknown[];

/** One column of the table as `CREATE TABLE` defines it; what schema evolution compares and adds. */
export interface SinkTableColumn {
  name: string;
  /** The type as written in the DDL, e.g. `numeric(12,2)`, `timestamptz`. */
  sqlType: string;
  /** `key`: the identification key (primary key); `data`: another dataset field; `meta`: bookkeeping. */
  role: 'key' | 'data' | 'meta';
  /** The column's constraints after its type (`NOT NULL`, `DEFAULT …`); empty for a nullable column. */
  constraints: string;
  /**
   * Whether `ALTER TABLE … ADD COLUMN` can add it to a table that already has rows: nullable, or with a
   * default. Data fields are always addable (non-key columns are nullable).
   */
  addable: boolean;
}

/**
 * The typed table a dataset materializes into: one column per field, the key as primary key, and the
 * version guard columns. A deleted record stays as a row with `_deleted = true` and its version, so a late,
 * older event cannot bring it back. Non-key columns are nullable: deleted rows keep no data.
 */
export class SinkTable {
  readonly name: string;
  readonly keyColumn: string;
  private readonly dataColumns: Column[];
  private readonly columns: Column[];

  readonly dataset: Dataset;

  constructor(dataset: Dataset) {
    this.dataset = dataset;
    this.name = dataset.id.replace(/[.-]/g, '_');
    this.keyColumn = dataset.key.field;
    this.dataColumns = dataset.fields.map(fieldColumn);
    this.columns = [...this.dataColumns, ...META];
  }

  /** Every column `CREATE TABLE` defines, `_committed_at` last. */
  tableColumns(): SinkTableColumn[] {
    const data = this.dataColumns.map((column): SinkTableColumn => {
      const key = column.name === this.keyColumn;
      return {
        name: column.name,
        sqlType: column.sqlType,
        role: key ? 'key' : 'data',
        constraints: key ? 'NOT NULL' : '',
        addable: !key,
      };
    });
    const meta = [...META, { name: '_committed_at', sqlType: 'timestamptz' }].map(
      (column): SinkTableColumn => {
        const constraints =
          column.name === '_committed_at' ? 'NOT NULL DEFAULT now()' : (META_CONSTRAINTS[column.name] ?? '');
        return {
          name: column.name,
          sqlType: column.sqlType,
          role: 'meta',
          constraints,
          addable: !constraints.includes('NOT NULL') || constraints.includes('DEFAULT'),
        };
      },
    );
    return [...data, ...meta];
  }

  createSql(): string {
    const columns = this.tableColumns().map((column) =>
      `${quoteIdent(column.name)} ${column.sqlType} ${column.constraints}`.trimEnd(),
    );
    return `CREATE TABLE IF NOT EXISTS ${quoteIdent(this.name)} (
  ${columns.join(',\n  ')},
  PRIMARY KEY (${quoteIdent(this.keyColumn)})
)`;
  }

  /** `ALTER TABLE … ADD COLUMN IF NOT EXISTS` for one column of {@link tableColumns}. */
  addColumnSql(column: SinkTableColumn): string {
    return `ALTER TABLE ${quoteIdent(this.name)} ADD COLUMN IF NOT EXISTS ${quoteIdent(column.name)} ${column.sqlType} ${column.constraints}`.trimEnd();
  }

  /**
   * Statements that bring a table created by an earlier version of this code up to the current meta
   * columns (today: `_revision`). Idempotent; for callers that do not run the sink's schema evolution.
   */
  upgradeSql(): string[] {
    return this.tableColumns()
      .filter((column) => column.name === '_revision')
      .map((column) => this.addColumnSql(column));
  }

  /** Empties the table (an agreement ended with the purge policy). */
  truncateSql(): string {
    return `TRUNCATE TABLE ${quoteIdent(this.name)}`;
  }

  /**
   * Versioned upsert of rows with distinct keys, one array parameter per column (`unnest` plans once,
   * whatever the batch size). Only a strictly newer (revision, version) replaces a stored row: a higher
   * agreement revision wins whatever its version (the coordinator re-derives the stream from offset 0).
   */
  upsertSql(): string {
    const table = quoteIdent(this.name);
    const names = this.columns.map((column) => quoteIdent(column.name));
    // numeric(p,s)[] is not a valid cast target; the column's own type applies on insert
    const arrays = this.columns.map(
      (column, index) => `$${index + 1}::${column.sqlType.replace(/\(.*\)$/, '')}[]`,
    );
    const updates = this.columns
      .filter((column) => column.name !== this.keyColumn)
      .map((column) => `${quoteIdent(column.name)} = EXCLUDED.${quoteIdent(column.name)}`);
    return `INSERT INTO ${table} (${names.join(', ')})
SELECT * FROM unnest(${arrays.join(', ')})
ON CONFLICT (${quoteIdent(this.keyColumn)}) DO UPDATE SET ${updates.join(', ')}, "_committed_at" = now()
WHERE (${table}."_revision", ${table}."_version") < (EXCLUDED."_revision", EXCLUDED."_version")`;
  }

  /**
   * {@link upsertSql} from a staging table of change events (`EventStagingTable`, schemas/postgres/staging.ts)
   * instead of arrays: collapsed to one row per key (its highest version), in key order (the order of
   * {@link upsertSql}'s callers, so concurrent writers lock rows alike), with the same version guard. `$1` is
   * the agreement revision of every row (0 outside agreements).
   */
  upsertFromSql(staging: string): string {
    const table = quoteIdent(this.name);
    const names = this.columns.map((column) => quoteIdent(column.name));
    const key = `s.${quoteIdent(this.keyColumn)} COLLATE "C"`;
    const select = this.columns.map((column) => {
      switch (column.name) {
        case '_deleted':
          return `s."_op" = 'DELETE'`;
        case '_revision':
          return '$1::integer';
        default:
          return stagedValue(column);
      }
    });
    const updates = this.columns
      .filter((column) => column.name !== this.keyColumn)
      .map((column) => `${quoteIdent(column.name)} = EXCLUDED.${quoteIdent(column.name)}`);
    return `INSERT INTO ${table} (${names.join(', ')})
SELECT DISTINCT ON (${key}) ${select.join(', ')}
  FROM ${staging} s
 ORDER BY ${key}, s."_version" DESC, s."_event_id"
ON CONFLICT (${quoteIdent(this.keyColumn)}) DO UPDATE SET ${updates.join(', ')}, "_committed_at" = now()
WHERE (${table}."_revision", ${table}."_version") < (EXCLUDED."_revision", EXCLUDED."_version")`;
  }

  /** Column-major parameters for {@link upsertSql}. */
  upsertParams(rows: SinkRow[]): unknown[][] {
    return this.columns.map((_, index) => rows.map((row) => row[index] ?? null));
  }

  /**
   * The row for one change event. `revision` is the agreement revision of a share stream (header
   * `lt-agreement-revision`); 0 for a source topic.
   */
  row(
    event: {
      key: string;
      version: number;
      op: string;
      eventId: string;
      occurredAt: Date;
      after: Record<string, unknown> | null;
    },
    revision = 0,
  ): SinkRow {
    return [
      ...recordValues(this.dataColumns, this.keyColumn, event),
      event.version,
      event.op === 'DELETE',
      event.eventId,
      event.op,
      event.occurredAt,
      revision,
    ];
  }
}
