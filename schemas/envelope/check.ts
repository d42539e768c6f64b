import { LtError } from '../../infra/errors.ts';
import { subjects } from '../../infra/kafka/topics.ts';
import type { Dataset } from '../model/dataset.ts';
import type { SchemaRegistry } from '../registry/client.ts';
import { decodeWireValue } from '../registry/decode.ts';
import { Ops, type ChangeEvent } from './change-event.ts';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The decoded value as a change event of `dataset`'s source topic, or LT_RECORD_INVALID / LT_NOT_OWNER naming
 * what is wrong. The Avro schema already fixed the types; this checks what a schema cannot: that the record
 * belongs to this topic, is published by the dataset's owner (the dictionary's, not whoever claims it) and
 * carries its own key. Every reader of a source topic (the coordinator, the NGDB sink) checks it before it acts.
 */
export function checkSourceEnvelope(dataset: Dataset, value: unknown): ChangeEvent {
  const event = value as Partial<Record<keyof ChangeEvent, unknown>> | null;
  const problems: string[] = [];
  if (typeof event !== 'object' || event === null)
    throw new LtError('LT_RECORD_INVALID', 'not a change event');
  if (event.dataset !== dataset.id)
    problems.push(`event for dataset "${String(event.dataset)}" on the topic of ${dataset.id}`);
  if (typeof event.eventId !== 'string' || !UUID.test(event.eventId)) problems.push('eventId is not a UUID');
  if (typeof event.op !== 'string' || !(Ops as readonly string[]).includes(event.op))
    problems.push(`op "${String(event.op)}" is not one of ${Ops.join(', ')}`);
  if (typeof event.key !== 'string' || event.key.length === 0) problems.push('key is empty');
  if (typeof event.version !== 'number' || !Number.isSafeInteger(event.version) || event.version < 1)
    problems.push('version is not a whole number ≥ 1');
  if (!(event.occurredAt instanceof Date) || Number.isNaN(event.occurredAt.getTime()))
    problems.push('occurredAt is not a timestamp');
  if (typeof event.sourceAgency !== 'string') problems.push('sourceAgency is missing');
  if (typeof event.traceId !== 'string') problems.push('traceId is missing');
  if (event.op === 'DELETE' && event.after !== null) problems.push('a DELETE carries a record');
  if (event.op !== 'DELETE') {
    const after = event.after as Record<string, unknown> | null | undefined;
    if (typeof after !== 'object' || after === null) problems.push(`a ${String(event.op)} carries no record`);
    else if (after[dataset.key.field] !== event.key)
      // no value in the reason: it reaches logs, and a key is a personal identifier
      problems.push(`the record's ${dataset.key.field} is not the event key`);
  }
  if (problems.length > 0)
    throw new LtError('LT_RECORD_INVALID', problems.join('; '), { details: { problems } });
  if (event.sourceAgency !== dataset.owner) {
    throw new LtError(
      'LT_NOT_OWNER',
      `${String(event.sourceAgency)} published to ${dataset.id}, whose owner is ${dataset.owner}`,
      { details: { dataset: dataset.id, owner: dataset.owner, agency: event.sourceAgency } },
    );
  }
  return event as ChangeEvent;
}

/**
 * One record of a source topic as its change event, from untrusted bytes: decoded within bounds with a schema
 * registered under the topic's subject (schemas/registry/decode.ts; only a registry outage is retriable), then
 * {@link checkSourceEnvelope}. `dataset` undefined: the topic's dataset left the dictionary (LT_DATASET_UNKNOWN).
 */
export async function decodeSourceEvent(
  registry: SchemaRegistry,
  dataset: Dataset | undefined,
  topic: string,
  value: Buffer,
): Promise<ChangeEvent> {
  if (!dataset) throw new LtError('LT_DATASET_UNKNOWN', `the dataset of ${topic} is not in the dictionary`);
  return checkSourceEnvelope(
    dataset,
    await decodeWireValue(registry, value, { subject: subjects.value(topic) }),
  );
}
