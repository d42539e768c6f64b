import { createHash } from 'node:crypto';
import type avro from 'avsc';
import type { Message } from 'kafkajs';
import { LtError, toLtError } from '../../infra/errors.ts';
import { deterministicUuidV7 } from '../../infra/ids.ts';
import {
  changeEventMessages,
  type ChangeEvent,
  type DatasetRecord,
} from '../../schemas/envelope/change-event.ts';
import { shareEventHeaders } from '../../schemas/envelope/share-stream.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { encodeWire } from '../../schemas/registry/wire.ts';
import type { Agreement } from '../agreements/model.ts';
import type { KeyState, StreamRef } from './state.ts';

// What one source event becomes on one agreement's share stream: pure, no I/O (the coordinator does that).

/** An active agreement at its revision, with everything needed to derive its stream. */
export interface ShareStream extends StreamRef {
  agreement: Agreement;
  topic: string;
  projected: Dataset;
  matches: (record: Record<string, unknown>) => boolean;
  keySchemaId: number;
  keyType: avro.Type;
  valueSchemaId: number;
  valueType: avro.Type;
}

export const streamKey = (stream: StreamRef): string => `${stream.agreementId}#${stream.revision}`;

/** A digest of the fields an agreement shares of one record, in the projection's field order. */
function sharedDigest(stream: ShareStream, share: ChangeEvent): Buffer {
  const values = stream.projected.fields.map((field) => share.after?.[field.name] ?? null);
  return createHash('sha256').update(JSON.stringify(values)).digest();
}

/**
 * What one source event means for one agreement: the share messages, and the digest of the shared record
 * when the key is a member afterwards (none after a DELETE); null when it tells the subscriber nothing (outside
 * the filter and never shared, or an update of a member that changes no shared field: forwarding it would
 * tell when hidden fields change); an LT_RECORD_INVALID naming the agreement when it cannot be derived (the
 * filter or the projected schema refuses it), which dead-letters it for that agreement alone instead of
 * blocking the partition.
 */
export function deriveShare(
  stream: ShareStream,
  event: ChangeEvent,
  known: KeyState | undefined,
): { messages: Message[]; digest: Buffer | null } | null | LtError {
  try {
    const inside = event.op !== 'DELETE' && event.after !== null && stream.matches(event.after);
    const member = known?.member === true;
    if (inside) {
      const op = member ? (event.op === 'SNAPSHOT' ? 'SNAPSHOT' : 'UPDATE') : 'CREATE';
      const share = shareEvent(stream, event, op);
      const digest = sharedDigest(stream, share);
      if (member && known.digest && known.digest.equals(digest)) return null;
      return { messages: messagesFor(stream, share), digest };
    }
    if (!member) return null;
    return { messages: messagesFor(stream, shareEvent(stream, event, 'DELETE')), digest: null };
  } catch (error) {
    if (error instanceof LtError && error.retriable) throw error;
    return new LtError(
      'LT_RECORD_INVALID',
      `cannot be derived for agreement ${stream.agreementId} (revision ${stream.revision}): ${toLtError(error).message}`,
      { cause: error, details: { agreement: stream.agreementId, revision: stream.revision } },
    );
  }
}

export function shareEvent(stream: ShareStream, source: ChangeEvent, op: ChangeEvent['op']): ChangeEvent {
  const common = {
    eventId: deterministicUuidV7(
      source.occurredAt,
      `${source.eventId}/${stream.agreementId}/${stream.revision}`,
    ),
    dataset: source.dataset,
    key: source.key,
    version: source.version,
    occurredAt: source.occurredAt,
    sourceAgency: source.sourceAgency,
    traceId: source.traceId,
  };
  if (op === 'DELETE' || source.after === null) return { ...common, op: 'DELETE', after: null };
  const after: DatasetRecord = {};
  for (const field of stream.projected.fields) after[field.name] = source.after[field.name] ?? null;
  return { ...common, op, after };
}

export function messagesFor(stream: ShareStream, event: ChangeEvent): Message[] {
  const key = encodeWire(stream.keySchemaId, stream.keyType, { [stream.projected.key.field]: event.key });
  const value = encodeWire(stream.valueSchemaId, stream.valueType, event);
  return changeEventMessages(
    key,
    value,
    shareEventHeaders(event.traceId, stream.agreementId, stream.revision),
    event.op,
  );
}
