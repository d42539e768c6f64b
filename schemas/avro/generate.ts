import type { Dataset, Field, TypeSpec } from '../model/dataset.ts';

/** The Avro schema JSON we emit: plain objects, serialisable as they are. */
export type AvroSchema = string | { [key: string]: unknown } | AvroSchema[];

const pascal = (text: string): string =>
  text
    .split(/[_-]/)
    .map((word) => word.charAt(0).toUpperCase() + word.slice(1))
    .join('');

/** `population.citizen` → namespace `vn.lienthong.population`, name `Citizen` (Avro names allow no '-'). */
export function avroNames(datasetId: string): { namespace: string; record: string } {
  const parts = datasetId.split('.').map((part) => part.replace(/-/g, '_'));
  const last = parts.pop() ?? datasetId;
  return { namespace: ['vn', 'lienthong', ...parts].join('.'), record: pascal(last) };
}

/**
 * The Avro type of a value. Code-list values are strings checked against the list (adding a code never
 * breaks a reader, unlike an Avro enum symbol); nested records are named `<Parent><Field>`.
 */
function avroType(spec: TypeSpec, name: string): AvroSchema {
  switch (spec.type) {
    case 'string':
    case 'code':
      return 'string';
    case 'int':
    case 'long':
    case 'boolean':
      return spec.type;
    case 'date':
      return { type: 'int', logicalType: 'date' };
    case 'timestamp':
      return { type: 'long', logicalType: 'timestamp-millis' };
    case 'decimal':
      return { type: 'bytes', logicalType: 'decimal', precision: spec.precision, scale: spec.scale };
    case 'record':
      return { type: 'record', name, fields: spec.fields.map((field) => avroField(field, name)) };
    case 'array':
      return { type: 'array', items: avroType(spec.items, `${name}Item`) };
  }
}

/** Required fields are plain; optional ones are unions with null, defaulting to null unless told otherwise. */
function avroField(field: Field, parent: string): AvroSchema {
  const type = avroType(field, `${parent}${pascal(field.name)}`);
  const base = { name: field.name, doc: field.description.en };
  if (field.required)
    return field.default === undefined ? { ...base, type } : { ...base, type, default: field.default };
  if (field.default === undefined || field.default === null)
    return { ...base, type: ['null', type], default: null };
  return { ...base, type: [type, 'null'], default: field.default };
}

/** The dataset's record schema. */
export function recordSchema(dataset: Dataset): AvroSchema {
  const { namespace, record } = avroNames(dataset.id);
  return {
    type: 'record',
    name: record,
    namespace,
    doc: dataset.description.en,
    fields: dataset.fields.map((field) => avroField(field, record)),
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
