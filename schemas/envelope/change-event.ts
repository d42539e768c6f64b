import type { IHeaders, Message } from 'kafkajs';

/** The operations a change event can carry (DESIGN.md §3). */
export const Ops = ['CREATE', 'UPDATE', 'DELETE', 'SNAPSHOT'] as const;
export type Op = (typeof Ops)[number];

/** A field value in memory: dates as 'YYYY-MM-DD', timestamps as Date, decimals as strings, absent as null. */
export type RecordValue =
  string | number | boolean | Date | null | RecordValue[] | { [field: string]: RecordValue };

/** A dataset record in memory. */
export type DatasetRecord = Record<string, RecordValue>;

interface EnvelopeCommon {
  /** UUIDv7, unique per event; the sink's dedup key. */
  eventId: string;
  dataset: string;
  /** The record's identification code; also the Kafka message key. */
  key: string;
  /** Strictly increasing per key at the source; the sink's version guard. */
  version: number;
  occurredAt: Date;
  sourceAgency: string;
  traceId: string;
}

/** A change event: a DELETE carries no record, every other op carries the whole record after the change. */
export type ChangeEvent<R extends DatasetRecord = DatasetRecord> =
  | (EnvelopeCommon & { op: 'DELETE'; after: null })
  | (EnvelopeCommon & { op: 'CREATE' | 'UPDATE' | 'SNAPSHOT'; after: R });

/** A change event's Kafka messages (DESIGN.md §3): the record, and after a DELETE a tombstone of the same key. */
export function changeEventMessages(key: Buffer, value: Buffer, headers: IHeaders, op: string): Message[] {
  const messages: Message[] = [{ key, value, headers }];
  if (op === 'DELETE') messages.push({ key, value: null, headers });
  return messages;
}
