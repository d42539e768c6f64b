import { describe, expect, it } from 'vitest';
import { CopyBinaryWriter } from '../../../../infra/postgres/copy.ts';

const SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

describe('COPY binary writer', () => {
  it('frames rows between the signature and the trailer, each value with its length, NULL as -1', () => {
    const out = new CopyBinaryWriter(64);
    out.row(2);
    out.text('ễ\t\\');
    out.null();
    const bytes = out.finish();
    const text = Buffer.from('ễ\t\\', 'utf8');
    expect(bytes).toEqual(
      Buffer.concat([
        SIGNATURE,
        Buffer.from([0, 0, 0, 0, 0, 0, 0, 0]),
        Buffer.from([0, 2, 0, 0, 0, text.length]),
        text,
        Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
      ]),
    );
  });

  it('writes integers, dates, timestamps, uuids and jsonb in their binary send formats', () => {
    const out = new CopyBinaryWriter(16); // grows as it goes
    out.int8(-2);
    out.int8(2 ** 40 + 5);
    out.int4(-1);
    out.bool(true);
    out.date(10_957 + 3); // 2000-01-04
    out.timestamptz(Date.parse('2000-01-01T00:00:01.5Z'));
    out.timestamptz(Date.parse('1500-01-01T00:00:00Z')); // beyond the safe integers in microseconds
    out.uuid('019F1979-2e80-7001-ab4a-2e9b9d913ea3');
    out.jsonb('["VN"]');
    const body = out.finish().subarray(19);
    const field = (hex: string) => Buffer.from(hex.replace(/ /g, ''), 'hex');
    const old = (BigInt(Date.parse('1500-01-01T00:00:00Z')) - 946_684_800_000n) * 1000n;
    const oldBytes = Buffer.alloc(8);
    oldBytes.writeBigInt64BE(old);
    expect(body).toEqual(
      Buffer.concat([
        field('00000008 ffffffff fffffffe'),
        field('00000008 00000100 00000005'),
        field('00000004 ffffffff'),
        field('00000001 01'),
        field('00000004 00000003'),
        field('00000008 00000000 0016e360'),
        field('00000008'),
        oldBytes,
        field('00000010 019f19792e807001ab4a2e9b9d913ea3'),
        field('00000007 01'),
        Buffer.from('["VN"]'),
        field('ffff'),
      ]),
    );
  });

  it('refuses a value its type cannot hold instead of writing other bits', () => {
    const out = new CopyBinaryWriter();
    expect(() => out.int4(2 ** 31)).toThrow(TypeError);
    expect(() => out.int4(1.5)).toThrow(TypeError);
    expect(() => out.int8(2 ** 53)).toThrow(TypeError);
    expect(() => out.uuid('019f1979-2e80-7001-ab4a-2e9b9d913ea')).toThrow(TypeError);
    expect(() => out.timestamptz(Number.NaN)).toThrow(TypeError);
  });
});
