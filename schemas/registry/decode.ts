import type avro from 'avsc';
import { LtError } from '../../infra/errors.ts';
import type { SchemaRegistry } from './client.ts';
import { wireSchemaId } from './wire.ts';

const MAX_SCHEMA_ID = 0x7fffffff; // Confluent schema ids are positive int32

/**
 * Decodes one Confluent wire-format value, telling apart what is wrong with the record (non-retriable:
 * `LT_DECODE_FAILED`, `LT_SCHEMA_UNKNOWN` → dead-letter topic) from what is wrong around it (retriable:
 * `LT_REGISTRY_UNREACHABLE` → retry the batch). The registry client (mappersmith) reports a refused
 * connection or a timeout as HTTP 400, so every registry answer but 404 counts as "unreachable".
 */
export async function decodeWireValue(registry: SchemaRegistry, value: Buffer): Promise<unknown> {
  const schemaId = wireSchemaId(value);
  if (schemaId === null) {
    throw new LtError(
      'LT_DECODE_FAILED',
      `not in the Confluent wire format (${value.length} bytes${value.length > 0 ? `, first byte ${value[0]}` : ''})`,
    );
  }
  if (schemaId < 1 || schemaId > MAX_SCHEMA_ID)
    throw new LtError('LT_SCHEMA_UNKNOWN', `schema id ${schemaId} is not a valid registry id`);
  let type: avro.Type;
  try {
    type = (await registry.getSchema(schemaId)) as unknown as avro.Type;
  } catch (cause) {
    const status = (cause as { status?: unknown }).status;
    if (status === 404)
      throw new LtError('LT_SCHEMA_UNKNOWN', `the registry does not know schema id ${schemaId}`, { cause });
    if (typeof status === 'number') {
      throw new LtError(
        'LT_REGISTRY_UNREACHABLE',
        `fetching schema ${schemaId} failed (${status}): ${(cause as Error).message}`,
        { cause },
      );
    }
    throw new LtError(
      'LT_DECODE_FAILED',
      `schema ${schemaId} cannot be used to decode: ${(cause as Error).message}`,
      { cause },
    );
  }
  try {
    return type.fromBuffer(value.subarray(5));
  } catch (cause) {
    throw new LtError(
      'LT_DECODE_FAILED',
      `the body does not decode with schema ${schemaId}: ${(cause as Error).message}`,
      { cause },
    );
  }
}
