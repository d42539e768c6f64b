import { CopyBinaryWriter } from '../../infra/postgres/copy.ts';
import { quoteIdent } from '../../infra/postgres/pool.ts';
import { daysOfIsoDate } from '../avro/logical-types.ts';
import type { ChangeEvent } from '../envelope/change-event.ts';
import type { Dataset, Field } from '../model/dataset.ts';
import { HISTORY_ENVELOPE } from './history.ts';
import { fieldColumn } from './table.ts';

/** How a staged column's values are written in COPY's binary format. */
type CopyKind = 'text' | 'int4' | 'int8' | 'bool' | 'date' | 'timestamptz' | 'uuid' | 'jsonb';

interface StagedColumn {
  name: string;
  /** The staging table's type: the target's, except numeric, staged as its decimal text. */
  sqlType: string;
  kind: CopyKind;
}

function stagedField(field: Field): StagedColumn {
  const { name, sqlType } = fieldColumn(field);
  switch (field.type) {
    case 'string':
    case 'code':
    case 'decimal': // a decimal string; `stagedValue` casts it, as the target column's type then applies
      return { name, sqlType: field.type === 'decimal' ? 'text' : sqlType, kind: 'text' };
    case 'int':
      return { name, sqlType, kind: 'int4' };
    case 'long':
      return { name, sqlType, kind: 'int8' };
    case 'boolean':
      return { name, sqlType, kind: 'bool' };
    case 'date':
      return { name, sqlType, kind: 'date' };
    case 'timestamp':
      return { name, sqlType, kind: 'timestamptz' };
    case 'record':
    case 'array':
      return { name, sqlType, kind: 'jsonb' };
  }
}

/** How each envelope column type is written in COPY's binary format. */
const ENVELOPE_KIND: Readonly<Record<string, CopyKind>> = {
  uuid: 'uuid',
  text: 'text',
  bigint: 'int8',
  timestamptz: 'timestamptz',
};

/**
 * Envelope columns of a staged event, after the record's own: the history table's, typed as it types them,
 * but `_provenance` (a package carries none).
 */
const META: readonly StagedColumn[] = HISTORY_ENVELOPE.filter((column) => column.name !== '_provenance').map(
  ({ name, sqlType }) => {
    const kind = ENVELOPE_KIND[sqlType];
    if (kind === undefined) throw new Error(`no COPY encoding for the envelope column type ${sqlType}`);
    return { name, sqlType, kind };
  },
);

/**
 * A session's temporary table that one batch of change events is COPYed into (binary format), to be moved
 * into the NGDB's or a sink's tables by one `INSERT … SELECT` each ({@link HistoryTable.insertFromSql},
 * {@link SinkTable.upsertFromSql}): the bulk path of a package import. Columns: the dataset's fields (null
 * for a DELETE except the key), then `_event_id, _op, _version, _source_agency, _occurred_at, _trace_id`.
 * `ON COMMIT DELETE ROWS`: each transaction starts with it empty. Temporary, so not WAL-logged and visible
 * only to its session; qualified with `pg_temp` so no table of the search_path can stand in for it.
 */
export class EventStagingTable {
  /** `pg_temp."<name>"`. */
  readonly qualifiedName: string;
  private readonly columns: StagedColumn[];
  private readonly dataColumns: StagedColumn[];
  private readonly keyColumn: string;
  /** Every column is staged in its target's type (no decimal staged as text): the rows fit the history too. */
  private readonly fitsTarget: boolean;

  constructor(dataset: Dataset, name = 'lt_event_stage') {
    this.qualifiedName = `pg_temp.${quoteIdent(name)}`;
    this.keyColumn = dataset.key.field;
    this.dataColumns = dataset.fields.map(stagedField);
    this.fitsTarget = this.dataColumns.every(
      (column, index) => column.sqlType === fieldColumn(dataset.fields[index]!).sqlType,
    );
    this.columns = [...this.dataColumns, ...META];
  }

  /** Drops an earlier one of this session, then creates it; run once per session, outside a batch. */
  createSql(): string[] {
    const columns = this.columns.map((column) => `${quoteIdent(column.name)} ${column.sqlType}`);
    return [
      `DROP TABLE IF EXISTS ${this.qualifiedName}`,
      `CREATE TEMPORARY TABLE ${this.qualifiedName} (\n  ${columns.join(',\n  ')}\n) ON COMMIT DELETE ROWS`,
    ];
  }

  dropSql(): string {
    return `DROP TABLE IF EXISTS ${this.qualifiedName}`;
  }

  copySql(): string {
    return this.copyIntoSql(this.qualifiedName);
  }

  /**
   * The same COPY into `table`, a table with these columns of the same types (the NGDB's history); null when a
   * column is staged in another type than its target's (decimal, staged as text), so the rows only fit here.
   */
  copyDirectSql(table: string): string | null {
    return this.fitsTarget ? this.copyIntoSql(table) : null;
  }

  private copyIntoSql(table: string): string {
    const names = this.columns.map((column) => quoteIdent(column.name));
    return `COPY ${table} (${names.join(', ')}) FROM STDIN WITH (FORMAT binary)`;
  }

  /**
   * The events as COPY binary rows, in the order given. A value its column cannot hold (which the decoder's
   * schema should have refused) is a TypeError naming the event's key and the column.
   */
  copyData(events: readonly ChangeEvent[]): Buffer {
    const out = new CopyBinaryWriter(events.length * 320);
    const fields = this.columns.length;
    for (const event of events) {
      out.row(fields);
      const after = event.after;
      for (const column of this.dataColumns) {
        const value =
          column.name === this.keyColumn ? event.key : after ? (after[column.name] ?? null) : null;
        try {
          writeValue(out, column.kind, value);
        } catch (cause) {
          throw new TypeError(`record ${event.key}: ${column.name}: ${(cause as Error).message}`, { cause });
        }
      }
      out.uuid(event.eventId);
      out.text(event.op);
      out.int8(event.version);
      out.text(event.sourceAgency);
      out.timestamptz(event.occurredAt.getTime());
      out.text(event.traceId);
    }
    return out.finish();
  }
}

function writeValue(out: CopyBinaryWriter, kind: CopyKind, value: unknown): void {
  if (value === null || value === undefined) return out.null();
  switch (kind) {
    case 'text':
      return out.text(typeof value === 'string' ? value : String(value));
    case 'int4':
      return out.int4(value as number);
    case 'int8':
      return out.int8(value as number);
    case 'bool':
      if (typeof value !== 'boolean') throw new TypeError('not a boolean');
      return out.bool(value);
    case 'date': {
      const days = daysOfIsoDate(value);
      if (days === undefined) throw new TypeError(`${String(value)} is not a YYYY-MM-DD date`);
      return out.date(days);
    }
    case 'timestamptz':
      if (!(value instanceof Date)) throw new TypeError('not a Date');
      return out.timestamptz(value.getTime());
    case 'uuid':
      return out.uuid(String(value));
    case 'jsonb':
      return out.jsonb(JSON.stringify(value));
  }
}
