import type pg from 'pg';
import type { PoolClient } from './pool.ts';

/**
 * `COPY … FROM STDIN` over node-postgres, from bytes already in memory (one batch: bounded by the caller).
 * node-postgres runs any object with a `submit(connection)` method as a query ("submittable") and hands it
 * the protocol messages of its turn; this one answers CopyInResponse with the data, then CopyDone.
 *
 * Protocol (PostgreSQL frontend/backend, simple query): Query("COPY …") → CopyInResponse → CopyData* CopyDone
 * → CommandComplete("COPY n") → ReadyForQuery; an error at any point → ErrorResponse → ReadyForQuery.
 */
class CopyFromBuffer implements pg.Submittable {
  private rows = 0;
  private settled = false;
  readonly done: Promise<number>;
  private resolve!: (rows: number) => void;
  private reject!: (error: unknown) => void;

  private readonly text: string;
  private readonly data: Buffer;

  constructor(text: string, data: Buffer) {
    this.text = text;
    this.data = data;
    this.done = new Promise<number>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  submit(connection: pg.Connection): void {
    (connection as unknown as WireConnection).query(this.text);
  }

  handleCopyInResponse(connection: WireConnection): void {
    for (let offset = 0; offset < this.data.length; offset += CHUNK)
      connection.sendCopyFromChunk(this.data.subarray(offset, offset + CHUNK));
    connection.endCopyFrom();
  }

  handleCommandComplete(message: { text?: string }): void {
    const match = /^COPY (\d+)$/.exec(message.text ?? '');
    this.rows = match ? Number(match[1]) : 0;
  }

  handleReadyForQuery(): void {
    this.settle(() => this.resolve(this.rows));
  }

  /** An ErrorResponse (node-postgres drops the query before ReadyForQuery) or a dead connection. */
  handleError(error: unknown): void {
    this.settle(() => this.reject(error));
  }

  // not expected during a COPY FROM; present because node-postgres calls whichever message arrives
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}

  private settle(action: () => void): void {
    if (this.settled) return;
    this.settled = true;
    action();
  }
}

/** The node-postgres connection methods a COPY FROM uses (pg/lib/connection.js). */
interface WireConnection {
  query(text: string): void;
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
}

/** CopyData messages of at most 64 KiB (any size is valid; this keeps each socket write small). */
const CHUNK = 64 * 1024;

/** Runs `copySql` (a `COPY … FROM STDIN`) on `client` with `data` as its input; returns the rows copied. */
export function copyFrom(client: PoolClient, copySql: string, data: Buffer): Promise<number> {
  const copy = new CopyFromBuffer(copySql, data);
  client.query(copy);
  return copy.done;
}

/**
 * COPY's text format: columns separated by a tab, rows ended by a newline, `\N` for null, and a backslash
 * before a backslash, tab, newline or carriage return (written as `\\`, `\t`, `\n`, `\r`).
 */
const NEEDS_ESCAPE = /[\\\t\n\r]/;
const ESCAPED = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

/**
 * One value in COPY's text format: strings as they are (escaped), numbers and bigints in decimal, booleans as
 * `t`/`f`, Dates in ISO 8601 (UTC), null and undefined as `\N`, anything else by `String`.
 */
export function copyTextValue(value: unknown): string {
  if (value === null || value === undefined) return '\\N';
  if (typeof value === 'string')
    return NEEDS_ESCAPE.test(value) ? value.replace(ESCAPED, (char) => ESCAPES[char]!) : value;
  if (typeof value === 'number' || typeof value === 'bigint') return String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  if (value instanceof Date) return value.toISOString();
  return copyTextValue(String(value));
}
