import type avro from 'avsc';

/*
 * Confluent wire format:
 *   byte 0      magic, always 0
 *   bytes 1–4   schema id, unsigned 32-bit big-endian
 *   bytes 5…    the Avro binary encoding of the value with that schema
 */
const MAGIC = 0;
const HEADER = 5;

/** Encodes `value` with an avsc type already resolved for `schemaId`; throws if the value does not fit. */
export function encodeWire(schemaId: number, type: avro.Type, value: unknown): Buffer {
  const body = type.toBuffer(value);
  const buffer = Buffer.allocUnsafe(HEADER + body.length);
  buffer.writeUInt8(MAGIC, 0);
  buffer.writeUInt32BE(schemaId, 1);
  body.copy(buffer, HEADER);
  return buffer;
}

/** The schema id of a wire-format buffer, or null when it is not in that format. */
export function wireSchemaId(buffer: Buffer): number | null {
  return buffer.length >= HEADER && buffer.readUInt8(0) === MAGIC ? buffer.readUInt32BE(1) : null;
}
