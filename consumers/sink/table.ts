import { quoteIdent } from '../../infra/postgres/pool.ts';
import type { Dataset, Field } from '../../schemas/model/dataset.ts';

/** One column of a sink table and the array type its values travel in for `unnest`. */
interface Column {
  name: string;
  sqlType: string;
  /** Nested records and arrays are stored as jsonb and travel as JSON text. */
  json?: boolean;
}

function column(field: Field): Column {
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

/** Bookkeeping columns every sink table has, after the dataset's own. */
const META: Column[] = [
  { name: '_version', sqlType: 'bigint' },
  { name: '_deleted', sqlType: 'boolean' },
  { name: '_event_id', sqlType: 'uuid' },
  { name: '_op', sqlType: 'text' },
  { name: '_occurred_at', sqlType: 'timestamptz' },
];

/** A row ready for the upsert: the record's values (null for a DELETE) plus the meta columns, in order. */
export type SinkRow = unknown[];

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

  constructor(readonly dataset: Dataset) {
    this.name = dataset.id.replace(/[.-]/g, '_');
    this.keyColumn = dataset.key.field;
    this.dataColumns = dataset.fields.map(column);
    this.columns = [...this.dataColumns, ...META];
  }

  createSql(): string {
    const columns = this.columns.map(
      (column) =>
        `${quoteIdent(column.name)} ${column.sqlType}${column.name === this.keyColumn || column.name === '_version' || column.name === '_deleted' ? ' NOT NULL' : ''}`,
    );
    return `CREATE TABLE IF NOT EXISTS ${quoteIdent(this.name)} (
  ${columns.join(',\n  ')},
  "_committed_at" timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (${quoteIdent(this.keyColumn)})
)`;
  }

  /**
   * Versioned upsert of rows with distinct keys, one array parameter per column (`unnest` plans once,
   * whatever the batch size). Only a strictly newer version replaces a stored row.
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
WHERE ${table}."_version" < EXCLUDED."_version"`;
  }

  /** Column-major parameters for {@link upsertSql}. */
  upsertParams(rows: SinkRow[]): unknown[][] {
    return this.columns.map((_, index) => rows.map((row) => row[index] ?? null));
  }

  /** The row for one change event. */
  row(event: {
    key: string;
    version: number;
    op: string;
    eventId: string;
    occurredAt: Date;
    after: Record<string, unknown> | null;
  }): SinkRow {
    const values = this.dataColumns.map((column) => {
      if (column.name === this.keyColumn) return event.key;
      const value = event.after ? (event.after[column.name] ?? null) : null;
      return column.json && value !== null ? JSON.stringify(value) : value;
    });
    return [...values, event.version, event.op === 'DELETE', event.eventId, event.op, event.occurredAt];
  }
}
