import { createHash, randomFillSync } from 'node:crypto';
import type { IHeaders, Message } from 'kafkajs';

/**
 * W3C Trace Context (https://www.w3.org/TR/trace-context/): the `traceparent` header that carries one record's
 * trace from HTTP ingest or the SDK through `lt.src.*`, `lt.share.*` and the dead-letter topics to every sink,
 * and into every log line of that record's processing (`trace_id`). Grammar of version 00:
 *
 *   traceparent = "00" "-" trace-id "-" parent-id "-" trace-flags
 *   trace-id    = 32 lower-case hex digits, not all zero
 *   parent-id   = 16 lower-case hex digits, not all zero
 *   trace-flags = 2 lower-case hex digits (01 = sampled)
 */
export const TRACEPARENT = 'traceparent';

export interface TraceContext {
  traceId: string;
  /** The span that wrote the record (its parent-id for whoever reads it next). */
  spanId: string;
  flags: string;
}

const TRACEPARENT_00 = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
const TRACE_ID = /^[0-9a-f]{32}$/;
const ALL_ZERO = /^0+$/;

/** A traceparent header value, or null when it is absent or not version 00 of the grammar above. */
export function parseTraceparent(text: string | undefined): TraceContext | null {
  const match = text === undefined ? null : TRACEPARENT_00.exec(text.trim());
  if (!match) return null;
  const [, traceId, spanId, flags] = match as unknown as [string, string, string, string];
  if (ALL_ZERO.test(traceId) || ALL_ZERO.test(spanId)) return null;
  return { traceId, spanId, flags };
}

export function formatTraceparent(context: TraceContext): string {
  return `00-${context.traceId}-${context.spanId}-${context.flags}`;
}

/**
 * Random bytes for ids, drawn from a pool refilled 4 KiB at a time: one `randomBytes` call per id costs more
 * than the rest of making a record's headers (the SDK makes two ids per record). Same CSPRNG, fewer calls.
 */
const pool = Buffer.alloc(4096);
let poolUsed = pool.length;

function randomHex(bytes: number): string {
  if (poolUsed + bytes > pool.length) {
    randomFillSync(pool);
    poolUsed = 0;
  }
  const hex = pool.toString('hex', poolUsed, poolUsed + bytes);
  poolUsed += bytes;
  return hex;
}

/** A new random trace id (16 bytes, hex). */
export function newTraceId(): string {
  return randomHex(16);
}

/** A new random span id (8 bytes, hex). */
export function newSpanId(): string {
  return randomHex(8);
}

/**
 * The W3C trace id of an envelope's `traceId`: itself when it is one, else a stable one derived from it (an
 * agency may give any text up to 128 characters, an outbox row its own id), so one change keeps one trace.
 */
export function traceIdFor(traceId: string): string {
  if (TRACE_ID.test(traceId) && !ALL_ZERO.test(traceId)) return traceId;
  return createHash('sha256').update(traceId, 'utf8').digest('hex').slice(0, 32);
}

/** The next hop of a trace: the same trace id and flags, a span of its own. */
export function childOf(context: TraceContext): TraceContext {
  return { traceId: context.traceId, spanId: newSpanId(), flags: context.flags };
}

/** The trace context a Kafka record carries in its `traceparent` header, or null. */
export function traceOfHeaders(headers: IHeaders | undefined): TraceContext | null {
  const value = headers?.[TRACEPARENT];
  const first = Array.isArray(value) ? value[0] : value;
  return parseTraceparent(first === undefined ? undefined : first.toString());
}

/** What a log line of one record's processing is bound to: `{ trace_id }`, or nothing without a trace. */
export function traceLogFields(headers: IHeaders | undefined): { trace_id?: string } {
  const context = traceOfHeaders(headers);
  return context ? { trace_id: context.traceId } : {};
}

/** A new span of the trace an envelope's `traceId` names ({@link traceIdFor}), sampled. */
export function traceparentFor(traceId: string): string {
  return formatTraceparent({ traceId: traceIdFor(traceId), spanId: newSpanId(), flags: '01' });
}

/**
 * `messages` (what one source record became) with the `traceparent` of the next hop of that record's trace: a
 * child of the record's own header, or, for a record written without one, of its envelope's `traceId`.
 */
export function carryTrace(from: IHeaders | undefined, traceId: string, messages: Message[]): Message[] {
  const source = traceOfHeaders(from);
  const header = source ? formatTraceparent(childOf(source)) : traceparentFor(traceId);
  return messages.map((message) => ({ ...message, headers: { ...message.headers, [TRACEPARENT]: header } }));
}
