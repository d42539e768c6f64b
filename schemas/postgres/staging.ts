import { copyTextValue } from '../../infra/postgres/copy.ts';
import { quoteIdent } from '../../infra/postgres/pool.ts';
import type { ChangeEvent } from '../envelope/change-event.ts';
import type { Dataset } from '../model/dataset.ts';
import { fieldColumn, type Column } from './table.ts';

/**
 * Envelope columns of a staged event, after the record's own (field names cannot start with `_`). Typed as
 * the target tables type them, so the INSERT … SELECT from the staging table needs no casts.
 */
const META: readonly Column[] = [
  { name: '_event_id', sqlType: 'uuid' },
  { name: '_op', sqlType: 'text' },
  { name: '_version', sqlType: 'bigint' },
  { name: '_source_agency', sqlType: 'text' },
  { name: '_occurred_at', sqlType: 'timestamptz' },
  { name: '_trace_id', sqlType: 'text' },
];

/**
 * A session's temporary table that one batch of change events is COPYed into (text format), to be moved
 * into the NGDB's or a sink's tables by one `INSERT … SELECT` each ({@link HistoryTable.insertFromSql},
 * {@link SinkTable.upsertFromSql}): the bulk path of a package import. Columns: the dataset's fields (null
 * for a DELETE except the key), then `_event_id, _op, _version, _source_agency, _occurred_at, _trace_id`.
 * `ON COMMIT DELETE ROWS`: each transaction starts with it empty. Temporary, so not WAL-logged and visible
 * only to its session; qualified with `pg_temp` so no table of the search_path can stand in for it.
 */
export class EventStagingTable {
  /** `pg_temp."<name>"`. */
  readonly qualifiedName: string;
  private readonly columns: Column[];
  private readonly dataColumns: Column[];
  private readonly keyColumn: string;

  constructor(dataset: Dataset, name = 'lt_event_stage') {
    this.qualifiedName = `pg_temp.${quoteIdent(name)}`;
    this.keyColumn = dataset.key.field;
    this.dataColumns = dataset.fields.map(fieldColumn);
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
    return `COPY ${this.qualifiedName} (${this.columns.map((column) => quoteIdent(column.name)).join(', ')}) FROM STDIN`;
  }

  /** The events as COPY text rows, in the order given (one row per event). */
  copyData(events: readonly ChangeEvent[]): Buffer {
    const lines: string[] = new Array<string>(events.length);
    const data = this.dataColumns;
    for (let row = 0; row < events.length; row++) {
      const event = events[row]!;
      const after = event.after;
      let line = '';
      for (const column of data) {
        let value: unknown =
          column.name === this.keyColumn ? event.key : after ? (after[column.name] ?? null) : null;
        if (column.json && value !== null) value = JSON.stringify(value);
        line += `${copyTextValue(value)}\t`;
      }
      line += `${copyTextValue(event.eventId)}\t${copyTextValue(event.op)}\t${copyTextValue(event.version)}\t`;
      line += `${copyTextValue(event.sourceAgency)}\t${copyTextValue(event.occurredAt)}\t${copyTextValue(event.traceId)}`;
      lines[row] = line;
    }
    return Buffer.from(lines.length === 0 ? '' : `${lines.join('\n')}\n`, 'utf8');
  }
}
