import type { Dataset, Field } from '../model/dataset.ts';

/** The Avro schema JSON we emit: plain objects, serialisable as they are. */
export type AvroSchema = string | { [key: string]: unknown } | AvroSchema[];

/** `population.citizen` → namespace `vn.lienthong.population`, name `Citizen` (Avro names allow no '-'). */
export function avroNames(datasetId: string): { namespace: string; record: string } {
  const parts = datasetId.split('.').map((part) => part.replace(/-/g, '_'));
  const last = parts.pop() ?? datasetId;
  const record = last
    .split('_')
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');
  return { namespace: ['vn', 'lienthong', ...parts].join('.'), record };
}

function fieldType(field: Field): AvroSchema {
  switch (field.type) {
    case 'string':
    case 'code': // code-list values are strings, checked against the list: adding a code never breaks a reader
      return 'string';
    case 'int':
      return 'int';
    case 'long':
      return 'long';
    case 'boolean':
      return 'boolean';
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-millis' };
  }
}

/** The dataset's record schema: required fields are plain, optional ones `["null", T]` with default null. */
export function recordSchema(dataset: Dataset): AvroSchema {
  const { namespace, record } = avroNames(dataset.id);
  return {
    type: 'record',
    name: record,
    namespace,
    doc: dataset.description.en,
    fields: dataset.fields.map((field) =>
      field.required
        ? { name: field.name, type: fieldType(field), doc: field.description.en }
        : { name: field.name, type: ['null', fieldType(field)], default: null, doc: field.description.en },
    ),
  };
}

/**
 * The Kafka key schema: a one-field record holding the identification code (e.g. `CitizenKey { personal_id }`).
 * Its binary form is the code's Avro string, so equal codes give equal key bytes and the same partition.
 */
export function keySchema(dataset: Dataset): AvroSchema {
  const { namespace, record } = avroNames(dataset.id);
  return {
    type: 'record',
    name: `${record}Key`,
    namespace,
    fields: [{ name: dataset.key.field, type: 'string' }],
  };
}

/**
 * The change-event envelope of DESIGN.md §3 with `after` typed by the dataset. Field order is part of the
 * binary contract: eventId, dataset, op, key, version, occurredAt, sourceAgency, traceId, after.
 */
export function changeEventSchema(dataset: Dataset): AvroSchema {
  const { namespace } = avroNames(dataset.id);
  return {
    type: 'record',
    name: 'ChangeEvent',
    namespace,
    doc: `A change to one ${dataset.id} record, published by its owner ${dataset.owner}`,
    fields: [
      { name: 'eventId', type: { type: 'string', logicalType: 'uuid' }, doc: 'UUIDv7, unique per event' },
      { name: 'dataset', type: 'string' },
      { name: 'op', type: { type: 'enum', name: 'Op', symbols: ['CREATE', 'UPDATE', 'DELETE', 'SNAPSHOT'] } },
      { name: 'key', type: 'string', doc: 'the identification code of the record' },
      { name: 'version', type: 'long', doc: 'strictly increasing per key at the source' },
      { name: 'occurredAt', type: { type: 'long', logicalType: 'timestamp-millis' } },
      { name: 'sourceAgency', type: 'string' },
      { name: 'traceId', type: 'string' },
      { name: 'after', type: ['null', recordSchema(dataset)], default: null, doc: 'null for DELETE' },
    ],
  };
}
