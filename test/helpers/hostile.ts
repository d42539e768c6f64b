import { randomUUID } from 'node:crypto';
import { sampleCitizens } from '../../producers/sample/citizens.ts';

/** Avro's zig-zag varint of a whole number (exact up to 2^53). */
export function zigzagVarint(value: number): Buffer {
  let rest = value >= 0 ? value * 2 : -value * 2 - 1;
  const bytes: number[] = [];
  while (rest >= 128) {
    bytes.push((rest % 128) | 0x80);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

/** Marks the place in an encoded record where a crafted part begins: a field set to this text. */
export const CUT_HERE = 'CUT-HERE-4f1d';

/**
 * The bytes of `encoded` up to the end of the CUT_HERE text, followed by `crafted`: e.g. a citizen whose
 * `ethnicity` (the field before `nationalities`) was CUT_HERE, cut there, and followed by an array block that
 * declares two billion items held in three bytes.
 */
export function cutAndCraft(encoded: Buffer, crafted: Buffer): Buffer {
  const at = encoded.indexOf(CUT_HERE);
  if (at < 0) throw new Error('the encoded record does not contain CUT_HERE');
  return Buffer.concat([encoded.subarray(0, at + CUT_HERE.length), crafted]);
}

/** An array block of 2^31 − 1 items, followed by a two-letter string: what avsc would try to allocate. */
export const HUGE_ARRAY_BLOCK = Buffer.concat([
  zigzagVarint(2 ** 31 - 1),
  zigzagVarint(2),
  Buffer.from('VN'),
]);

/**
 * A well-formed change event of a test's citizen dataset (BCA's, CREATE, version 1), changed by `overrides`
 * (`after` is merged into the sample record): the raw material of records that are wrong in one way.
 */
export function citizenEvent(
  datasetId: string,
  seed: number,
  overrides: { after?: Record<string, unknown>; [field: string]: unknown } = {},
): Record<string, unknown> & { key: string } {
  const { after: afterOverrides, ...rest } = overrides;
  const after = { ...sampleCitizens(1, seed)[0]!, ...afterOverrides };
  return {
    eventId: randomUUID(),
    dataset: datasetId,
    op: 'CREATE',
    key: String(after.personal_id),
    version: 1,
    occurredAt: new Date(),
    sourceAgency: 'BCA',
    traceId: 'hostile',
    after,
    ...rest,
  } as Record<string, unknown> & { key: string };
}
