import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { from as copyStreamFrom } from 'pg-copy-streams';
import type { PoolClient } from './pool.ts';

/**
 * `COPY … FROM STDIN` over node-postgres (pg-copy-streams: the copy sub-protocol as a writable stream), from
 * bytes already in memory (one batch, bounded by the caller). Resolves with the rows PostgreSQL copied; rejects
 * with its error (the statement's, or a dead connection's).
 */
export async function copyFrom(client: PoolClient, copySql: string, data: Buffer): Promise<number> {
  const stream = client.query(copyStreamFrom(copySql));
  await pipeline(Readable.from([data]), stream);
  return stream.rowCount;
}

/**
 * Rows in COPY's binary format, built in one growing buffer (one batch). Grammar (PostgreSQL, COPY, "Binary
 * Format"):
 *   file    = signature "PGCOPY\n\xff\r\n\0" (11 bytes) ‖ flags int32 (0) ‖ extension length int32 (0) ‖ tuple* ‖ int16 -1
 *   tuple   = field count int16 ‖ field*
 *   field   = length int32 (-1: NULL, no bytes) ‖ the value in its type's binary send format
 * Values (all big-endian): text UTF-8; int4; int8; bool one byte; date int4 days since 2000-01-01; timestamptz
 * int8 microseconds since 2000-01-01 UTC; uuid 16 bytes; jsonb version byte 1 ‖ JSON text. Each method refuses
 * (TypeError) a value its type cannot hold, as PostgreSQL would refuse its text, instead of writing other bits.
 */
export class CopyBinaryWriter {
  private buffer: Buffer;
  private position = 0;

  constructor(initialBytes = 1 << 20) {
    this.buffer = Buffer.allocUnsafe(Math.max(initialBytes, 64));
    this.buffer.write('PGCOPY\n\xff\r\n\0', 0, 'latin1');
    this.buffer.writeInt32BE(0, 11);
    this.buffer.writeInt32BE(0, 15);
    this.position = 19;
  }

  row(fields: number): void {
    this.room(2);
    this.position = this.buffer.writeInt16BE(fields, this.position);
  }

  null(): void {
    this.room(4);
    this.position = this.buffer.writeInt32BE(-1, this.position);
  }

  text(value: string): void {
    this.room(4 + value.length * 3);
    const bytes = this.buffer.write(value, this.position + 4, 'utf8');
    this.buffer.writeInt32BE(bytes, this.position);
    this.position += 4 + bytes;
  }

  int4(value: number): void {
    if (!Number.isInteger(value) || value < -2_147_483_648 || value > 2_147_483_647)
      throw new TypeError(`${String(value)} is not a 32-bit integer`);
    this.room(8);
    this.buffer.writeInt32BE(4, this.position);
    this.position = this.buffer.writeInt32BE(value, this.position + 4);
  }

  int8(value: number): void {
    if (!Number.isSafeInteger(value)) throw new TypeError(`${String(value)} is not a safe integer`);
    this.room(12);
    this.buffer.writeInt32BE(8, this.position);
    this.writeInt64(value, this.position + 4);
    this.position += 12;
  }

  bool(value: boolean): void {
    this.room(5);
    this.buffer.writeInt32BE(1, this.position);
    this.position = this.buffer.writeUInt8(value ? 1 : 0, this.position + 4);
  }

  /** A date as days since 1970-01-01. */
  date(daysSinceEpoch: number): void {
    this.int4(daysSinceEpoch - PG_EPOCH_DAYS);
  }

  /** A timestamptz as milliseconds since the epoch (a Date's getTime()). */
  timestamptz(msSinceEpoch: number): void {
    if (!Number.isSafeInteger(msSinceEpoch)) throw new TypeError(`${String(msSinceEpoch)} is not a time`);
    const micros = (msSinceEpoch - PG_EPOCH_MS) * 1000;
    if (Number.isSafeInteger(micros)) return this.int8(micros);
    // beyond ±285 years of 2000 microseconds leave the safe integers
    this.room(12);
    this.buffer.writeInt32BE(8, this.position);
    this.buffer.writeBigInt64BE(BigInt(msSinceEpoch - PG_EPOCH_MS) * 1000n, this.position + 4);
    this.position += 12;
  }

  uuid(value: string): void {
    if (!UUID.test(value)) throw new TypeError(`${value.slice(0, 40)} is not a UUID`);
    this.room(20);
    this.buffer.writeInt32BE(16, this.position);
    let at = this.position + 4;
    for (const [start, end] of UUID_GROUPS) at += this.buffer.write(value.slice(start, end), at, 'hex');
    this.position = at;
  }

  /** jsonb from its JSON text. */
  jsonb(json: string): void {
    this.room(5 + json.length * 3);
    const bytes = this.buffer.write(json, this.position + 5, 'utf8');
    this.buffer.writeInt32BE(bytes + 1, this.position);
    this.buffer.writeUInt8(1, this.position + 4);
    this.position += 5 + bytes;
  }

  /** The rows with the trailer; the writer is done. */
  finish(): Buffer {
    this.room(2);
    this.position = this.buffer.writeInt16BE(-1, this.position);
    return this.buffer.subarray(0, this.position);
  }

  private writeInt64(value: number, at: number): void {
    const high = Math.floor(value / 2 ** 32);
    this.buffer.writeInt32BE(high, at);
    this.buffer.writeUInt32BE(value - high * 2 ** 32, at + 4);
  }

  private room(bytes: number): void {
    if (this.position + bytes <= this.buffer.length) return;
    let size = this.buffer.length * 2;
    while (size < this.position + bytes) size *= 2;
    const grown = Buffer.allocUnsafe(size);
    this.buffer.copy(grown, 0, 0, this.position);
    this.buffer = grown;
  }
}

/** 2000-01-01, PostgreSQL's epoch, in days and milliseconds since 1970-01-01. */
const PG_EPOCH_DAYS = 10_957;
const PG_EPOCH_MS = PG_EPOCH_DAYS * 86_400_000;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const UUID_GROUPS = [
  [0, 8],
  [9, 13],
  [14, 18],
  [19, 23],
  [24, 36],
] as const;
