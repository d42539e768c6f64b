import type avro from 'avsc';
import { LtError } from '../../infra/errors.ts';
import { AvroBoundsViolation, checkAvroBounds, type AvroBounds } from '../avro/bounded.ts';
import type { SchemaRegistry } from './client.ts';
import { wireSchemaId } from './wire.ts';

const MAX_SCHEMA_ID = 0x7fffffff; // Confluent schema ids are positive int32

/**
 * The largest record value a consumer decodes: what an Agent Node may publish (its `maxRecordBytes`, 1,000,000
 * by default) with room for the envelope. A larger value did not come through an Agent Node.
 */
export const MAX_VALUE_BYTES = 1_048_576;
/** The registry's list of the subjects one schema id is registered under, as last asked (or being asked). */
const subjectLists = new WeakMap<SchemaRegistry, Map<number, Promise<string[] | null>>>();

/** Asks the registry and remembers the answer; an outage is not remembered. */
function askSubjects(
  registry: SchemaRegistry,
  lists: Map<number, Promise<string[] | null>>,
  schemaId: number,
) {
  const asked = registry.subjectsOfSchema(schemaId);
  lists.set(schemaId, asked);
  asked.catch(() => {
    if (lists.get(schemaId) === asked) lists.delete(schemaId);
  });
  return asked;
}

/**
 * Refuses a schema id that is not registered under `subject` (LT_SCHEMA_NOT_OF_TOPIC): a record on a topic may
 * only be written with one of that topic's schemas, not with another dataset's or a made-up one. A yes is
 * remembered per registry client; a no is asked again (the same schema may have been registered under this
 * subject since: the coordinator gives agreements with the same fields the same schema), so only a record that
 * is refused costs a lookup.
 */
async function checkSubject(registry: SchemaRegistry, subject: string, schemaId: number): Promise<void> {
  let lists = subjectLists.get(registry);
  if (!lists) subjectLists.set(registry, (lists = new Map()));
  const known = lists.get(schemaId);
  let registered = known ? await known : null;
  // a no (or nothing yet) is asked again: the answer remembered may predate the registration
  if (!registered?.includes(subject)) registered = await askSubjects(registry, lists, schemaId);
  if (registered === null)
    throw new LtError('LT_SCHEMA_UNKNOWN', `the registry does not know schema id ${schemaId}`);
  if (!registered.includes(subject)) {
    throw new LtError(
      'LT_SCHEMA_NOT_OF_TOPIC',
      // which subjects it is under is not said: a dead letter must not name other agreements' topics
      `schema id ${schemaId} is not registered under ${subject}: a record on this topic must use one of its schemas`,
      { details: { schemaId, subject } },
    );
  }
}

/** The registry client's failure as one of our errors: 404 is about the record, any other status an outage. */
function registryFailure(cause: unknown, schemaId: number): LtError {
  const status = (cause as { status?: unknown }).status;
  if (status === 404)
    return new LtError('LT_SCHEMA_UNKNOWN', `the registry does not know schema id ${schemaId}`, { cause });
  if (typeof status === 'number') {
    return new LtError(
      'LT_REGISTRY_UNREACHABLE',
      `fetching schema ${schemaId} failed (${status}): ${(cause as Error).message}`,
      { cause },
    );
  }
  return new LtError(
    'LT_DECODE_FAILED',
    `schema ${schemaId} cannot be used to decode: ${(cause as Error).message}`,
    { cause },
  );
}

/** Options of one decode. */
export interface DecodeOptions {
  /** The subject the record's schema must be registered under: `<topic>-value` (TopicNameStrategy). */
  subject: string;
  /** Bounds on the body beyond its length (schemas/avro/bounded.ts). */
  bounds?: AvroBounds;
  /** Values longer than this are refused unread (LT_RECORD_TOO_LARGE). Default {@link MAX_VALUE_BYTES}. */
  maxBytes?: number;
}

/**
 * Decodes one Confluent wire-format value from untrusted bytes, telling apart what is wrong with the record
 * (non-retriable: `LT_DECODE_FAILED`, `LT_SCHEMA_UNKNOWN`, `LT_SCHEMA_NOT_OF_TOPIC` → dead-letter topic) from
 * what is wrong around it (retriable: `LT_REGISTRY_UNREACHABLE` → retry the batch). In order: the wire header,
 * the schema id registered under the topic's subject (checked before the schema is fetched), the body walked
 * within bounds before anything is allocated for it (a declared count or length the bytes cannot hold is
 * refused, with the field's path), then the Avro decode. The registry client (mappersmith) reports a refused connection or a timeout as HTTP 400, so
 * every registry answer but 404 counts as "unreachable".
 */
export async function decodeWireValue(
  registry: SchemaRegistry,
  value: Buffer,
  options: DecodeOptions,
): Promise<unknown> {
  const maxBytes = options.maxBytes ?? MAX_VALUE_BYTES;
  if (value.length > maxBytes)
    throw new LtError(
      'LT_RECORD_TOO_LARGE',
      `the value is ${value.length} bytes; a consumer decodes at most ${maxBytes} (an Agent Node publishes no larger)`,
      { details: { bytes: value.length, limit: maxBytes } },
    );
  const schemaId = wireSchemaId(value);
  if (schemaId === null) {
    throw new LtError(
      'LT_DECODE_FAILED',
      `not in the Confluent wire format (${value.length} bytes${value.length > 0 ? `, first byte ${value[0]}` : ''})`,
    );
  }
  if (schemaId < 1 || schemaId > MAX_SCHEMA_ID)
    throw new LtError('LT_SCHEMA_UNKNOWN', `schema id ${schemaId} is not a valid registry id`);
  await checkSubject(registry, options.subject, schemaId);
  let type: avro.Type;
  try {
    type = (await registry.getSchema(schemaId)) as unknown as avro.Type;
  } catch (cause) {
    throw registryFailure(cause, schemaId);
  }
  const body = value.subarray(5);
  try {
    checkAvroBounds(type, body, options.bounds);
  } catch (cause) {
    if (!(cause instanceof AvroBoundsViolation)) throw cause;
    throw new LtError(
      'LT_DECODE_FAILED',
      `the body does not decode with schema ${schemaId}: ${cause.message}`,
      {
        cause,
        details: { schemaId, path: cause.path },
      },
    );
  }
  try {
    return type.fromBuffer(body);
  } catch (cause) {
    throw new LtError(
      'LT_DECODE_FAILED',
      `the body does not decode with schema ${schemaId}: ${(cause as Error).message}`,
      { cause },
    );
  }
}
