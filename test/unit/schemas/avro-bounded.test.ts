import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { AvroBoundsViolation, checkAvroBounds } from '../../../schemas/avro/bounded.ts';
import { changeEventSchema } from '../../../schemas/avro/generate.ts';
import { avroTypeOptions } from '../../../schemas/avro/logical-types.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { CUT_HERE, cutAndCraft, HUGE_ARRAY_BLOCK, zigzagVarint } from '../../helpers/hostile.ts';

const dictionary = loadDictionary();
const citizenType = avro.Type.forSchema(
  changeEventSchema(getDataset(dictionary, 'population.citizen')) as avro.Schema,
  avroTypeOptions(),
);

/** Every shape Avro has, nested (avsc's random values of a recursive schema never end: recursion is tested below). */
const everyShape = avro.Type.forSchema({
  type: 'record',
  name: 'Everything',
  fields: [
    { name: 'flag', type: 'boolean' },
    { name: 'small', type: 'int' },
    { name: 'big', type: 'long' },
    { name: 'ratio', type: 'float' },
    { name: 'precise', type: 'double' },
    { name: 'text', type: 'string' },
    { name: 'blob', type: 'bytes' },
    { name: 'digest', type: { type: 'fixed', name: 'Digest', size: 4 } },
    { name: 'colour', type: { type: 'enum', name: 'Colour', symbols: ['RED', 'GREEN', 'BLUE'] } },
    { name: 'maybe', type: ['null', 'string', 'long'] },
    { name: 'tags', type: { type: 'array', items: 'string' } },
    { name: 'counts', type: { type: 'map', values: 'long' } },
    { name: 'nothings', type: { type: 'array', items: 'null' } },
    {
      name: 'rows',
      type: {
        type: 'array',
        items: {
          type: 'record',
          name: 'Row',
          fields: [
            { name: 'label', type: 'string' },
            { name: 'cells', type: { type: 'map', values: { type: 'array', items: ['null', 'double'] } } },
          ],
        },
      },
    },
  ],
});

function violation(type: avro.Type, body: Buffer, bounds = {}): AvroBoundsViolation {
  try {
    checkAvroBounds(type, body, bounds);
  } catch (error) {
    if (error instanceof AvroBoundsViolation) return error;
    throw error;
  }
  throw new Error('the body was accepted');
}

function citizenEvent(overrides: Record<string, unknown> = {}) {
  const after = { ...sampleCitizens(1, 7)[0]!, ...overrides };
  return {
    eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
    dataset: 'population.citizen',
    op: 'UPDATE',
    key: String(after.personal_id),
    version: 3,
    occurredAt: new Date('2026-11-30T06:00:00Z'),
    sourceAgency: 'BCA',
    traceId: 't-1',
    after,
  };
}

describe('bounded Avro decoding: a body is walked before avsc allocates anything for it', () => {
  it('accepts every valid encoding of every dataset’s change event and of every Avro shape', () => {
    for (const dataset of dictionary.datasets.values()) {
      const plain = avro.Type.forSchema(changeEventSchema(dataset) as avro.Schema); // logical types: same bytes
      for (let n = 0; n < 50; n++) checkAvroBounds(plain, plain.toBuffer(plain.random()));
    }
    for (let n = 0; n < 200; n++) checkAvroBounds(everyShape, everyShape.toBuffer(everyShape.random()));
    checkAvroBounds(citizenType, citizenType.toBuffer(citizenEvent()));
  });

  it('accepts arrays and maps written in blocks with byte sizes (negative counts)', () => {
    const tags = avro.Type.forSchema({ type: 'array', items: 'string' });
    // two blocks: -2 items in 6 bytes ("ab", "cd"), then 1 item, then the end
    const body = Buffer.concat([
      zigzagVarint(-2),
      zigzagVarint(6),
      zigzagVarint(2),
      Buffer.from('ab'),
      zigzagVarint(2),
      Buffer.from('cd'),
      zigzagVarint(1),
      zigzagVarint(1),
      Buffer.from('e'),
      zigzagVarint(0),
    ]);
    checkAvroBounds(tags, body);
    expect(tags.fromBuffer(body)).toEqual(['ab', 'cd', 'e']);
  });

  it('refuses every truncation of a valid body', () => {
    for (let n = 0; n < 20; n++) {
      const body = everyShape.toBuffer(everyShape.random());
      for (let length = 0; length < body.length; length++)
        expect(() => checkAvroBounds(everyShape, body.subarray(0, length))).toThrow(AvroBoundsViolation);
    }
    const citizen = citizenType.toBuffer(citizenEvent());
    for (let length = 0; length < citizen.length; length++)
      expect(() => checkAvroBounds(citizenType, citizen.subarray(0, length))).toThrow(AvroBoundsViolation);
  });

  it('refuses a citizen whose nationalities declare two billion items in three bytes, naming the field (the NGDB sink died on it)', () => {
    const body = cutAndCraft(citizenType.toBuffer(citizenEvent({ ethnicity: CUT_HERE })), HUGE_ARRAY_BLOCK);
    const problem = violation(citizenType, body);
    expect(problem.path).toBe('after.nationalities');
    expect(problem.message).toMatch(/declares 2147483647 items, but the bytes that remain hold at most \d+/);
  });

  it('refuses a string, bytes or block size longer than the bytes that remain, and a negative one', () => {
    const event = citizenType.toBuffer(citizenEvent({ ethnicity: CUT_HERE }));
    const hugeString = cutAndCraft(
      event,
      Buffer.concat([zigzagVarint(1), zigzagVarint(2 ** 40), Buffer.from('x')]),
    );
    expect(violation(citizenType, hugeString).message).toMatch(
      /after\.nationalities\[0\]: a string of 1099511627776 bytes, but only 1 remain/,
    );
    const negative = cutAndCraft(event, Buffer.concat([zigzagVarint(1), zigzagVarint(-5)]));
    expect(violation(citizenType, negative).problem).toBe('a string with a negative length');
    const blockSize = cutAndCraft(event, Buffer.concat([zigzagVarint(-1), zigzagVarint(2 ** 35)]));
    expect(violation(citizenType, blockSize).problem).toMatch(/an array block declares 34359738368 bytes/);
    const bytes = avro.Type.forSchema('bytes');
    expect(violation(bytes, Buffer.concat([zigzagVarint(100), Buffer.alloc(3)])).problem).toMatch(
      /a bytes of 100 bytes, but only 3 remain/,
    );
  });

  it('refuses a map that declares more entries than its bytes hold', () => {
    const counts = avro.Type.forSchema({ type: 'map', values: 'long' });
    expect(violation(counts, Buffer.concat([zigzagVarint(2 ** 50), Buffer.alloc(4)])).problem).toMatch(
      /a map block declares 1125899906842624 items, but the bytes that remain hold at most 2/,
    );
  });

  it('caps items that take no bytes at all, which no length can bound', () => {
    const nothings = avro.Type.forSchema({ type: 'array', items: 'null' });
    checkAvroBounds(nothings, Buffer.concat([zigzagVarint(1000), zigzagVarint(0)]));
    expect(violation(nothings, Buffer.concat([zigzagVarint(2 ** 40), zigzagVarint(0)])).problem).toBe(
      'more than 100000 items that take no bytes',
    );
    expect(
      violation(nothings, Buffer.concat([zigzagVarint(10), zigzagVarint(0)]), { maxZeroSizeItems: 5 })
        .problem,
    ).toBe('more than 5 items that take no bytes');
  });

  it('refuses indexes out of range, bad booleans, overlong numbers and bytes left over', () => {
    const colour = avro.Type.forSchema({ type: 'enum', name: 'C', symbols: ['A', 'B'] });
    expect(violation(colour, zigzagVarint(2)).problem).toBe('enum index 2 is not one of the 2 symbols');
    const maybe = avro.Type.forSchema(['null', 'string']);
    expect(violation(maybe, zigzagVarint(7)).problem).toBe('union index 7 is not one of the 2 branches');
    expect(violation(avro.Type.forSchema('boolean'), Buffer.from([2])).problem).toMatch(/neither 0 nor 1/);
    expect(violation(avro.Type.forSchema('long'), Buffer.alloc(11, 0xff)).problem).toBe(
      'a number longer than 10 bytes',
    );
    expect(
      violation(avro.Type.forSchema('int'), Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 1])).problem,
    ).toBe('a number longer than 5 bytes');
    expect(violation(avro.Type.forSchema('long'), Buffer.from([2, 0])).problem).toBe(
      '1 bytes left over after the value',
    );
  });

  it('refuses nesting deeper than the limit in a recursive schema', () => {
    const node = avro.Type.forSchema({
      type: 'record',
      name: 'Node',
      fields: [{ name: 'next', type: ['null', 'Node'] }],
    });
    const deep = Buffer.concat([Buffer.alloc(40, 2), Buffer.from([0])]); // 40 × "the Node branch", then null
    checkAvroBounds(node, deep);
    expect(violation(node, deep, { maxDepth: 30 }).problem).toBe('nested deeper than 30');
  });
});
