import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkCompatibility,
  checkReaderWriter,
  CompatibilityLevels,
  type CompatibilityLevel,
  type Incompatibility,
} from '../../../../schemas/registry/compatibility.ts';

// ---------------------------------------------------------------------------------------------------------
// Fixtures

type Json = unknown;
type FieldJson = Record<string, Json> & { name: string };

const tierEnum = { type: 'enum', name: 'Tier', symbols: ['BRONZE', 'SILVER', 'GOLD'] };

const baseFields: readonly FieldJson[] = [
  { name: 'id', type: 'string' },
  { name: 'name', type: 'string' },
  { name: 'tier', type: tierEnum },
  { name: 'age', type: 'int' },
  { name: 'nickname', type: ['null', 'string'], default: null },
];

function customer(fields: readonly FieldJson[]): Json {
  return { type: 'record', name: 'Customer', namespace: 'com.example', fields };
}

function withField(field: FieldJson): Json {
  return customer([...baseFields, field]);
}

function withoutField(name: string): Json {
  return customer(baseFields.filter((field) => field.name !== name));
}

function replacingField(name: string, replacement: FieldJson): Json {
  return customer(baseFields.map((field) => (field.name === name ? replacement : field)));
}

const v1Customer = customer(baseFields);

function typesOf(problems: readonly Incompatibility[]): string[] {
  return problems.map((problem) => problem.type);
}

function record(name: string, fields: readonly FieldJson[], extra: Record<string, Json> = {}): Json {
  return { type: 'record', name, ...extra, fields };
}

// ---------------------------------------------------------------------------------------------------------
// The compatibility matrix

type Verdicts = Readonly<Record<CompatibilityLevel, boolean>>;

interface MatrixRow {
  readonly change: string;
  readonly before: Json;
  readonly after: Json;
  readonly verdicts: Verdicts;
  /** The Confluent error type expected when the new schema cannot read old data. */
  readonly backwardFailure?: string;
  /** The Confluent error type expected when the old schema cannot read new data. */
  readonly forwardFailure?: string;
}

/** Columns: NONE, BACKWARD, BACKWARD_TRANSITIVE, FORWARD, FORWARD_TRANSITIVE, FULL, FULL_TRANSITIVE. */
function verdicts(...values: [boolean, boolean, boolean, boolean, boolean, boolean, boolean]): Verdicts {
  return Object.fromEntries(CompatibilityLevels.map((level, index) => [level, values[index]])) as Verdicts;
}

const Y = true;
const N = false;

const matrix: readonly MatrixRow[] = [
  {
    change: 'adding an optional field with a default',
    before: v1Customer,
    after: withField({ name: 'email', type: ['null', 'string'], default: null }),
    verdicts: verdicts(Y, Y, Y, Y, Y, Y, Y),
  },
  {
    change: 'adding a required field without a default',
    before: v1Customer,
    after: withField({ name: 'email', type: 'string' }),
    verdicts: verdicts(Y, N, N, Y, Y, N, N),
    backwardFailure: 'READER_FIELD_MISSING_DEFAULT_VALUE',
  },
  {
    change: 'removing a field that has a default',
    before: v1Customer,
    after: withoutField('nickname'),
    verdicts: verdicts(Y, Y, Y, Y, Y, Y, Y),
  },
  {
    change: 'removing a field without a default',
    before: v1Customer,
    after: withoutField('name'),
    verdicts: verdicts(Y, Y, Y, N, N, N, N),
    forwardFailure: 'READER_FIELD_MISSING_DEFAULT_VALUE',
  },
  {
    change: 'promoting a field from int to long',
    before: v1Customer,
    after: replacingField('age', { name: 'age', type: 'long' }),
    verdicts: verdicts(Y, Y, Y, N, N, N, N),
    forwardFailure: 'TYPE_MISMATCH',
  },
  {
    change: 'changing a field from string to int',
    before: v1Customer,
    after: replacingField('name', { name: 'name', type: 'int' }),
    verdicts: verdicts(Y, N, N, N, N, N, N),
    backwardFailure: 'TYPE_MISMATCH',
    forwardFailure: 'TYPE_MISMATCH',
  },
  {
    change: 'renaming a field and keeping the old name as an alias',
    before: v1Customer,
    after: replacingField('name', { name: 'fullName', aliases: ['name'], type: 'string' }),
    verdicts: verdicts(Y, Y, Y, N, N, N, N),
    forwardFailure: 'READER_FIELD_MISSING_DEFAULT_VALUE',
  },
  {
    change: 'adding an enum symbol',
    before: v1Customer,
    after: replacingField('tier', {
      name: 'tier',
      type: { ...tierEnum, symbols: [...tierEnum.symbols, 'PLATINUM'] },
    }),
    verdicts: verdicts(Y, Y, Y, N, N, N, N),
    forwardFailure: 'MISSING_ENUM_SYMBOLS',
  },
  {
    change: 'removing an enum symbol',
    before: v1Customer,
    after: replacingField('tier', { name: 'tier', type: { ...tierEnum, symbols: ['BRONZE', 'SILVER'] } }),
    verdicts: verdicts(Y, N, N, Y, Y, N, N),
    backwardFailure: 'MISSING_ENUM_SYMBOLS',
  },
  {
    change: 'widening a union from ["null","string"] to ["null","string","int"]',
    before: v1Customer,
    after: replacingField('nickname', { name: 'nickname', type: ['null', 'string', 'int'], default: null }),
    verdicts: verdicts(Y, Y, Y, N, N, N, N),
    forwardFailure: 'MISSING_UNION_BRANCH',
  },
];

/** The "after" schema of the matrix row whose change starts with `change`. */
function changedSchema(change: string): Json {
  const row = matrix.find((candidate) => candidate.change.startsWith(change));
  if (!row) throw new Error(`no matrix row for ${change}`);
  return row.after;
}

const levelPhrases: Readonly<Record<CompatibilityLevel, string>> = {
  NONE: 'allowed under NONE',
  BACKWARD: 'backward compatible',
  BACKWARD_TRANSITIVE: 'backward transitive compatible',
  FORWARD: 'forward compatible',
  FORWARD_TRANSITIVE: 'forward transitive compatible',
  FULL: 'fully compatible',
  FULL_TRANSITIVE: 'fully transitive compatible',
};

/** The error types a failing check must report, given which directions the level checks. */
function expectedFailureTypes(row: MatrixRow, level: CompatibilityLevel): string[] {
  const checksBackward = level.startsWith('BACKWARD') || level.startsWith('FULL');
  const checksForward = level.startsWith('FORWARD') || level.startsWith('FULL');
  return [
    ...(checksForward && row.forwardFailure ? [row.forwardFailure] : []),
    ...(checksBackward && row.backwardFailure ? [row.backwardFailure] : []),
  ];
}

const matrixCases = matrix.flatMap((row) =>
  CompatibilityLevels.map((level) => ({
    title: `${row.change} is ${row.verdicts[level] ? '' : 'not '}${levelPhrases[level]}`,
    row,
    level,
  })),
);

describe('compatibility matrix (new schema registered over one old version)', () => {
  it.each(matrixCases)('$title', ({ row, level }) => {
    const problems = checkCompatibility(level, row.after, [row.before]);

    if (row.verdicts[level]) {
      expect(problems).toEqual([]);
    } else {
      expect(problems.length).toBeGreaterThan(0);
      expect(new Set(typesOf(problems))).toEqual(new Set(expectedFailureTypes(row, level)));
    }
  });

  it('covers every compatibility level for every change', () => {
    expect(matrixCases).toHaveLength(matrix.length * CompatibilityLevels.length);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Transitive versus non-transitive

describe('transitive levels check every live version, non-transitive levels only the latest', () => {
  // v1 has no f; v2 adds f with a default; v3 drops the default on f.
  const addThenRequire = [
    record('Event', [{ name: 'id', type: 'string' }]),
    record('Event', [
      { name: 'id', type: 'string' },
      { name: 'f', type: 'string', default: '' },
    ]),
    record('Event', [
      { name: 'id', type: 'string' },
      { name: 'f', type: 'string' },
    ]),
  ] as const;
  // v1 has a required f; v2 gives f a default; v3 removes f.
  const relaxThenRemove = [
    record('Event', [
      { name: 'id', type: 'string' },
      { name: 'f', type: 'string' },
    ]),
    record('Event', [
      { name: 'id', type: 'string' },
      { name: 'f', type: 'string', default: '' },
    ]),
    record('Event', [{ name: 'id', type: 'string' }]),
  ] as const;

  it('dropping the default of a field added in v2 is backward compatible with v2 alone', () => {
    const [v1, v2, v3] = addThenRequire;
    expect(checkCompatibility('BACKWARD', v2, [v1])).toEqual([]);
    expect(checkCompatibility('BACKWARD', v3, [v1, v2])).toEqual([]);
  });

  it('dropping the default of a field added in v2 is not backward transitive compatible, because v1 data lacks it', () => {
    const [v1, v2, v3] = addThenRequire;
    const problems = checkCompatibility('BACKWARD_TRANSITIVE', v3, [v1, v2]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ type: 'READER_FIELD_MISSING_DEFAULT_VALUE', location: '/fields/1' });
    expect(problems[0]?.message).toMatch(/^Against live version 1 of 2 \(oldest first\): /);
    expect(problems[0]?.message).toContain("field 'f'");
  });

  it('dropping the default of a field added in v2 is fully compatible with v2 but not fully transitive compatible', () => {
    const [v1, v2, v3] = addThenRequire;
    expect(checkCompatibility('FULL', v3, [v1, v2])).toEqual([]);
    expect(typesOf(checkCompatibility('FULL_TRANSITIVE', v3, [v1, v2]))).toEqual([
      'READER_FIELD_MISSING_DEFAULT_VALUE',
    ]);
  });

  it('removing a field that only v2 gave a default is forward compatible but not forward transitive compatible', () => {
    const [v1, v2, v3] = relaxThenRemove;
    expect(checkCompatibility('FORWARD', v2, [v1])).toEqual([]);
    expect(checkCompatibility('FORWARD', v3, [v1, v2])).toEqual([]);
    const problems = checkCompatibility('FORWARD_TRANSITIVE', v3, [v1, v2]);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatchObject({ type: 'READER_FIELD_MISSING_DEFAULT_VALUE', location: '/fields/1' });
    expect(problems[0]?.message).toContain(
      'consumers using the old schema cannot read data written with the new schema',
    );
  });

  it('transitive checking reports only the newest failing version, as Confluent validateAll does', () => {
    const v1 = record('Event', [{ name: 'a', type: 'int' }]);
    const v2 = record('Event', [{ name: 'a', type: 'long' }]);
    const candidate = record('Event', [{ name: 'a', type: 'string' }]);

    const problems = checkCompatibility('BACKWARD_TRANSITIVE', candidate, [v1, v2]);

    expect(problems).toHaveLength(1);
    expect(problems[0]?.message).toMatch(/^Against the latest live version \(2 of 2\): /);
    expect(problems[0]?.message).toContain('long in the old schema');
  });

  it('a non-transitive level ignores older versions entirely', () => {
    const v1 = record('Event', [{ name: 'a', type: 'string' }]);
    const v2 = record('Event', [{ name: 'a', type: 'int' }]);
    const candidate = record('Event', [{ name: 'a', type: 'long' }]);
    expect(checkCompatibility('BACKWARD', candidate, [v1, v2])).toEqual([]);
    expect(checkCompatibility('BACKWARD_TRANSITIVE', candidate, [v1, v2])).not.toEqual([]);
  });
});

describe('checkCompatibility', () => {
  const v1 = record('Event', [{ name: 'a', type: 'int' }]);
  const unrelated = { type: 'array', items: 'string' };

  it('NONE accepts any change, even to an unrelated type', () => {
    expect(checkCompatibility('NONE', unrelated, [v1])).toEqual([]);
    expect(checkCompatibility('FULL', unrelated, [v1])).not.toEqual([]);
  });

  it('a subject without live versions accepts any schema at every level', () => {
    for (const level of CompatibilityLevels) expect(checkCompatibility(level, unrelated, [])).toEqual([]);
  });

  it('FULL reports both directions, old-reads-new first, like Confluent', () => {
    const v2 = record('Event', [{ name: 'a', type: 'string' }]);
    const problems = checkCompatibility('FULL', v2, [v1]);
    expect(problems.map((problem) => problem.message.replace(/,.*/, ''))).toEqual([
      "The type of field 'a' is int in the old schema but string in the new schema",
      "The type of field 'a' is string in the new schema but int in the old schema",
    ]);
  });

  it('a single live version is not prefixed with a version position', () => {
    const problems = checkCompatibility('BACKWARD', record('Event', [{ name: 'a', type: 'string' }]), [v1]);
    expect(problems[0]?.message).toMatch(/^The type of field 'a' is string in the new schema/);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Reader/writer rules

const primitives = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'] as const;
const promotions: ReadonlySet<string> = new Set([
  'int->long',
  'int->float',
  'int->double',
  'long->float',
  'long->double',
  'float->double',
  'string->bytes',
  'bytes->string',
]);
const primitivePairs = primitives.flatMap((writer) =>
  primitives.map((reader) => ({
    writer,
    reader,
    readable: writer === reader || promotions.has(`${writer}->${reader}`),
  })),
);

describe('primitive promotion', () => {
  it.each(primitivePairs.filter((pair) => pair.readable))(
    'a $reader reader reads $writer data',
    ({ reader, writer }) => {
      expect(checkReaderWriter(reader, writer)).toEqual([]);
    },
  );

  it.each(primitivePairs.filter((pair) => !pair.readable))(
    'a $reader reader cannot read $writer data',
    ({ reader, writer }) => {
      expect(checkReaderWriter(reader, writer)).toEqual([
        {
          type: 'TYPE_MISMATCH',
          location: '/',
          message: expect.stringContaining(
            `is ${reader} in the reader schema but ${writer} in the writer schema`,
          ),
        },
      ]);
    },
  );
});

describe('records and fields', () => {
  it('writer fields the reader lacks are ignored', () => {
    const writer = record('R', [
      { name: 'a', type: 'int' },
      { name: 'b', type: 'string' },
    ]);
    expect(checkReaderWriter(record('R', [{ name: 'a', type: 'int' }]), writer)).toEqual([]);
  });

  it('a reader field missing from the writer is fine with a default, even a null default', () => {
    const reader = record('R', [
      { name: 'a', type: 'int' },
      { name: 'b', type: ['null', 'int'], default: null },
    ]);
    expect(checkReaderWriter(reader, record('R', [{ name: 'a', type: 'int' }]))).toEqual([]);
  });

  it('a reader field missing from the writer and without a default is reported at the field', () => {
    const reader = record('R', [
      { name: 'a', type: 'int' },
      { name: 'b', type: 'int' },
    ]);
    expect(checkReaderWriter(reader, record('R', [{ name: 'a', type: 'int' }]))).toEqual([
      { type: 'READER_FIELD_MISSING_DEFAULT_VALUE', location: '/fields/1', message: expect.any(String) },
    ]);
  });

  it('reader field aliases are honoured but writer field aliases are not', () => {
    const old = record('R', [{ name: 'a', type: 'int' }]);
    const renamed = record('R', [{ name: 'b', aliases: ['a'], type: 'int' }]);
    expect(checkReaderWriter(renamed, old)).toEqual([]);
    expect(typesOf(checkReaderWriter(old, renamed))).toEqual(['READER_FIELD_MISSING_DEFAULT_VALUE']);
  });

  it('a reader field matching two writer fields through its aliases is incompatible, as Avro Java throws', () => {
    const reader = record('R', [{ name: 'b', aliases: ['a'], type: 'int' }]);
    const writer = record('R', [
      { name: 'a', type: 'int' },
      { name: 'b', type: 'int' },
    ]);
    expect(typesOf(checkReaderWriter(reader, writer))).toEqual([
      'READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS',
    ]);
  });

  it('records with different names do not match, and the field problems are still reported', () => {
    const problems = checkReaderWriter(
      record('A', [{ name: 'x', type: 'int' }]),
      record('B', [{ name: 'x', type: 'string' }]),
    );
    expect(problems.map(({ type, location }) => ({ type, location }))).toEqual([
      { type: 'NAME_MISMATCH', location: '/name' },
      { type: 'TYPE_MISMATCH', location: '/fields/0/type' },
    ]);
  });

  it('a reader record alias naming the writer record makes them match', () => {
    const reader = record('Customer', [{ name: 'x', type: 'int' }], { aliases: ['Client'] });
    expect(checkReaderWriter(reader, record('Client', [{ name: 'x', type: 'int' }]))).toEqual([]);
  });

  it('nested record field problems are located inside the nested record', () => {
    const address = (zipType: string): Json => record('Address', [{ name: 'zip', type: zipType }]);
    const reader = record('Person', [{ name: 'address', type: address('int') }]);
    const writer = record('Person', [{ name: 'address', type: address('string') }]);
    expect(checkReaderWriter(reader, writer)).toEqual([
      {
        type: 'TYPE_MISMATCH',
        location: '/fields/0/type/fields/0/type',
        message: expect.stringContaining("'address.zip'"),
      },
    ]);
  });
});

describe('enums', () => {
  const colour = (symbols: string[], extra: Record<string, Json> = {}): Json => ({
    type: 'enum',
    name: 'Colour',
    symbols,
    ...extra,
  });

  it('a writer symbol missing from the reader is reported with the missing symbols, sorted', () => {
    expect(checkReaderWriter(colour(['RED']), colour(['RED', 'GREEN', 'BLUE']))).toEqual([
      {
        type: 'MISSING_ENUM_SYMBOLS',
        location: '/symbols',
        message: expect.stringContaining("lacks the symbols 'BLUE', 'GREEN'"),
      },
    ]);
  });

  it('a reader enum with a default symbol reads unknown writer symbols', () => {
    expect(
      checkReaderWriter(colour(['UNKNOWN', 'RED'], { default: 'UNKNOWN' }), colour(['RED', 'GREEN'])),
    ).toEqual([]);
  });

  it('enums with different names do not match', () => {
    const other = { type: 'enum', name: 'Shade', symbols: ['RED'] };
    expect(typesOf(checkReaderWriter(colour(['RED']), other))).toEqual(['NAME_MISMATCH']);
  });
});

describe('fixed', () => {
  const fixed = (name: string, size: number): Json => ({ type: 'fixed', name, size });

  it('fixed types of the same name and size match', () => {
    expect(checkReaderWriter(fixed('Md5', 16), fixed('Md5', 16))).toEqual([]);
  });

  it('a fixed size change is a FIXED_SIZE_MISMATCH at /size', () => {
    expect(checkReaderWriter(fixed('Hash', 32), fixed('Hash', 16))).toEqual([
      {
        type: 'FIXED_SIZE_MISMATCH',
        location: '/size',
        message: expect.stringContaining('32 bytes in the reader schema'),
      },
    ]);
  });

  it('a fixed name change is a NAME_MISMATCH at /name', () => {
    expect(checkReaderWriter(fixed('Sha', 16), fixed('Md5', 16))).toEqual([
      { type: 'NAME_MISMATCH', location: '/name', message: expect.stringContaining("'Md5'") },
    ]);
  });
});

describe('arrays and maps', () => {
  it('array items are compared recursively, with promotion', () => {
    expect(checkReaderWriter({ type: 'array', items: 'long' }, { type: 'array', items: 'int' })).toEqual([]);
    expect(checkReaderWriter({ type: 'array', items: 'int' }, { type: 'array', items: 'long' })).toEqual([
      { type: 'TYPE_MISMATCH', location: '/items', message: expect.stringContaining('the array items of') },
    ]);
  });

  it('map values are compared recursively', () => {
    expect(checkReaderWriter({ type: 'map', values: 'string' }, { type: 'map', values: 'bytes' })).toEqual(
      [],
    );
    expect(
      typesOf(checkReaderWriter({ type: 'map', values: 'int' }, { type: 'map', values: 'string' })),
    ).toEqual(['TYPE_MISMATCH']);
  });

  it('an array is not a map', () => {
    expect(
      typesOf(checkReaderWriter({ type: 'array', items: 'int' }, { type: 'map', values: 'int' })),
    ).toEqual(['TYPE_MISMATCH']);
  });
});

describe('unions', () => {
  it('a reader union reads a non-union writer when some branch matches, promotion included', () => {
    expect(checkReaderWriter(['null', 'string'], 'string')).toEqual([]);
    expect(checkReaderWriter(['null', 'long'], 'int')).toEqual([]);
  });

  it('a reader union with no branch for the writer type is a MISSING_UNION_BRANCH', () => {
    expect(checkReaderWriter(['null', 'string'], 'int')).toEqual([
      { type: 'MISSING_UNION_BRANCH', location: '/', message: expect.stringContaining('int values') },
    ]);
  });

  it('a writer union needs every branch readable, and each unreadable branch is reported by index', () => {
    expect(checkReaderWriter(['null', 'string'], ['null', 'int', 'string', 'boolean'])).toEqual([
      { type: 'MISSING_UNION_BRANCH', location: '/1', message: expect.any(String) },
      { type: 'MISSING_UNION_BRANCH', location: '/3', message: expect.any(String) },
    ]);
  });

  it('a non-union reader reads a writer union only if it reads every branch', () => {
    expect(checkReaderWriter('long', ['int', 'long'])).toEqual([]);
    expect(checkReaderWriter('string', ['null', 'string'])).toEqual([
      { type: 'TYPE_MISMATCH', location: '/0', message: expect.any(String) },
    ]);
  });

  it('narrowing an optional field to its non-null type is backward incompatible but forward compatible', () => {
    const optional = record('R', [{ name: 'a', type: ['null', 'string'], default: null }]);
    const required = record('R', [{ name: 'a', type: 'string' }]);
    expect(checkCompatibility('FORWARD', required, [optional])).toEqual([]);
    expect(typesOf(checkCompatibility('BACKWARD', required, [optional]))).toEqual(['TYPE_MISMATCH']);
  });

  it('a record branch is matched by name inside a reader union', () => {
    const point = record('Point', [{ name: 'x', type: 'int' }]);
    const line = record('Line', [{ name: 'length', type: 'int' }]);
    expect(checkReaderWriter(['null', line, point], point)).toEqual([]);
    expect(typesOf(checkReaderWriter(['null', line], point))).toEqual(['MISSING_UNION_BRANCH']);
  });
});

describe('logical types do not change compatibility', () => {
  it('a logical type annotation on either side is ignored', () => {
    expect(checkReaderWriter({ type: 'int', logicalType: 'date' }, 'int')).toEqual([]);
    expect(checkReaderWriter('string', { type: 'string', logicalType: 'uuid' })).toEqual([]);
  });

  it('the underlying types are still compared and promoted', () => {
    expect(
      checkReaderWriter(
        { type: 'long', logicalType: 'timestamp-millis' },
        { type: 'int', logicalType: 'date' },
      ),
    ).toEqual([]);
    expect(
      typesOf(
        checkReaderWriter(
          { type: 'int', logicalType: 'date' },
          { type: 'long', logicalType: 'timestamp-millis' },
        ),
      ),
    ).toEqual(['TYPE_MISMATCH']);
  });

  it('a decimal precision change is compatible, as only the bytes underneath count', () => {
    const decimal = (precision: number): Json => ({
      type: 'bytes',
      logicalType: 'decimal',
      precision,
      scale: 2,
    });
    expect(checkReaderWriter(decimal(10), decimal(20))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Recursion and names

describe('recursive schemas', () => {
  const linkedList = (valueType: string, extraFields: readonly FieldJson[] = []): Json =>
    record('Node', [
      { name: 'value', type: valueType },
      { name: 'next', type: ['null', 'Node'], default: null },
      ...extraFields,
    ]);

  it('a linked list evolved compatibly is backward compatible, and the check terminates', () => {
    const v2 = linkedList('long', [{ name: 'label', type: ['null', 'string'], default: null }]);
    expect(checkCompatibility('BACKWARD', v2, [linkedList('int')])).toEqual([]);
  });

  it('an incompatible change in a linked list is reported once, at the field that changed', () => {
    expect(checkReaderWriter(linkedList('string'), linkedList('int'))).toEqual([
      {
        type: 'TYPE_MISMATCH',
        location: '/fields/0/type',
        message: expect.stringContaining("The type of field 'value' is string"),
      },
    ]);
  });

  it('mutually recursive types through arrays and maps are compared without looping', () => {
    const tree = (leafType: string): Json =>
      record('Tree', [
        { name: 'leaf', type: leafType },
        {
          name: 'forest',
          type: record('Forest', [
            { name: 'trees', type: { type: 'array', items: 'Tree' } },
            { name: 'byName', type: { type: 'map', values: 'Tree' } },
          ]),
        },
      ]);
    expect(checkReaderWriter(tree('double'), tree('float'))).toEqual([]);
    expect(typesOf(checkReaderWriter(tree('int'), tree('float')))).toEqual(['TYPE_MISMATCH']);
  });
});

describe('namespaces and names', () => {
  it('a nested type inherits the enclosing namespace, so a short reference to it resolves', () => {
    const schema = record(
      'Order',
      [
        { name: 'billing', type: record('Address', [{ name: 'zip', type: 'string' }]) },
        { name: 'shipping', type: 'Address' },
        { name: 'returns', type: 'com.shop.Address' },
      ],
      { namespace: 'com.shop' },
    );
    expect(checkReaderWriter(schema, schema)).toEqual([]);
  });

  it('a reference to a type of another namespace needs its full name, or is rejected as unknown', () => {
    const money = {
      type: 'record',
      name: 'Money',
      namespace: 'com.finance',
      fields: [{ name: 'cents', type: 'long' }],
    };
    const byFullName = record(
      'Invoice',
      [
        { name: 'total', type: money },
        { name: 'tax', type: 'com.finance.Money' },
      ],
      {
        namespace: 'com.shop',
      },
    );
    const byShortName = record(
      'Invoice',
      [
        { name: 'total', type: money },
        { name: 'tax', type: 'Money' },
      ],
      {
        namespace: 'com.shop',
      },
    );
    expect(checkReaderWriter(byFullName, byFullName)).toEqual([]);
    expect(() => checkReaderWriter(byShortName, byShortName)).toThrow(/unknown type 'Money'/);
  });

  it('a dotted name is a full name and overrides the namespace attribute', () => {
    const reader = {
      type: 'record',
      name: 'com.a.Thing',
      namespace: 'com.ignored',
      aliases: ['Old'],
      fields: [],
    };
    const writer = { type: 'record', name: 'com.a.Old', fields: [] };
    expect(checkReaderWriter(reader, writer)).toEqual([]);
  });

  it('changing only the namespace is compatible, because Avro Java compares unqualified names', () => {
    const fields = [{ name: 'id', type: 'string' }];
    const before = record('User', fields, { namespace: 'com.example.v1' });
    const after = record('User', fields, { namespace: 'com.example.v2' });
    expect(checkCompatibility('FULL', after, [before])).toEqual([]);
  });

  it('a reader alias is qualified in the namespace inherited from the enclosing record', () => {
    const writer = record(
      'Person',
      [{ name: 'home', type: record('OldAddress', [{ name: 'zip', type: 'string' }]) }],
      {
        namespace: 'com.acme',
      },
    );
    const reader = (aliases: string[]): Json =>
      record(
        'Person',
        [{ name: 'home', type: record('Address', [{ name: 'zip', type: 'string' }], { aliases }) }],
        {
          namespace: 'com.acme',
        },
      );
    expect(checkReaderWriter(reader(['OldAddress']), writer)).toEqual([]);
    expect(checkReaderWriter(reader(['com.acme.OldAddress']), writer)).toEqual([]);
    expect(checkReaderWriter(reader(['org.other.OldAddress']), writer)).toEqual([
      {
        type: 'NAME_MISMATCH',
        location: '/fields/0/type/name',
        message: expect.stringContaining("'com.acme.OldAddress'"),
      },
    ]);
  });

  it('a short reference falls back to the null namespace when the enclosing namespace has no such type', () => {
    const schema = record(
      'Outer',
      [
        {
          name: 'first',
          type: { type: 'record', name: 'Plain', namespace: '', fields: [{ name: 'x', type: 'int' }] },
        },
        { name: 'second', type: 'Plain' },
      ],
      { namespace: 'com.example' },
    );
    expect(checkReaderWriter(schema, schema)).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Messages

describe('messages', () => {
  it('a missing default names the field and says which consumers break', () => {
    const [problem] = checkCompatibility('BACKWARD', withField({ name: 'email', type: 'string' }), [
      v1Customer,
    ]);
    expect(problem?.message).toBe(
      "The new schema has field 'email' without a default value, but the old schema does not have that field, " +
        'so consumers using the new schema cannot read data written with the old schema.',
    );
  });

  it('a type change names the field, both types and the broken consumers', () => {
    const [problem] = checkCompatibility('FORWARD', replacingField('age', { name: 'age', type: 'long' }), [
      v1Customer,
    ]);
    expect(problem).toEqual({
      type: 'TYPE_MISMATCH',
      location: '/fields/3/type',
      message:
        "The type of field 'age' is int in the old schema but long in the new schema, and long cannot be promoted to int, " +
        'so consumers using the old schema cannot read data written with the new schema.',
    });
  });

  it('enum and union messages name the field they concern', () => {
    const union = checkCompatibility('FORWARD', changedSchema('widening a union'), [v1Customer]);
    const enumeration = checkCompatibility('BACKWARD', changedSchema('removing an enum symbol'), [
      v1Customer,
    ]);
    expect(union[0]?.message).toContain(
      "The union at field 'nickname' in the old schema has no branch that can read the int values",
    );
    expect(enumeration[0]?.message).toContain(
      "Enum 'com.example.Tier' (field 'tier') in the new schema lacks the symbol 'GOLD'",
    );
  });
});

// ---------------------------------------------------------------------------------------------------------
// Properties

/** Gives every named type a unique name, so generated schemas never redefine one. */
function renameNamedTypes(json: Json, counter = { next: 0 }): Json {
  if (Array.isArray(json)) return json.map((item) => renameNamedTypes(item, counter));
  if (typeof json !== 'object' || json === null) return json;
  const entries = Object.entries(json).map(
    ([key, value]) => [key, renameNamedTypes(value, counter)] as const,
  );
  const copy: Record<string, Json> = Object.fromEntries(entries);
  if (copy['type'] === 'record' || copy['type'] === 'enum' || copy['type'] === 'fixed') {
    copy['name'] = `T${counter.next}`;
    counter.next += 1;
  }
  return copy;
}

const schemaArbitrary = fc
  .letrec<{ schema: Json; nonUnion: Json }>((tie) => ({
    schema: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      tie('nonUnion'),
      fc.uniqueArray(fc.constantFrom(...primitives), { minLength: 1, maxLength: 4 }),
    ),
    nonUnion: fc.oneof(
      { depthSize: 'small', withCrossShrink: true },
      fc.constantFrom(...primitives),
      fc.constant({ type: 'enum', name: 'E', symbols: ['A', 'B'] }),
      fc.constant({ type: 'fixed', name: 'F', size: 4 }),
      tie('schema').map((items) => ({ type: 'array', items })),
      tie('schema').map((values) => ({ type: 'map', values })),
      fc.array(tie('schema'), { maxLength: 3 }).map((types) => ({
        type: 'record',
        name: 'R',
        fields: types.map((type, index) => ({ name: `f${index}`, type })),
      })),
    ),
  }))
  .schema.map((schema) => renameNamedTypes(schema));

describe('properties', () => {
  it('every schema reads data written with itself, at every level', () => {
    fc.assert(
      fc.property(schemaArbitrary, (schema) => {
        expect(checkReaderWriter(schema, schema)).toEqual([]);
        for (const level of CompatibilityLevels)
          expect(checkCompatibility(level, schema, [schema, schema])).toEqual([]);
      }),
    );
  });

  it('BACKWARD and FORWARD are the two reading directions of checkReaderWriter', () => {
    fc.assert(
      fc.property(schemaArbitrary, schemaArbitrary, (candidate, previous) => {
        const newReadsOld = checkReaderWriter(candidate, previous).length === 0;
        const oldReadsNew = checkReaderWriter(previous, candidate).length === 0;
        expect(checkCompatibility('BACKWARD', candidate, [previous]).length === 0).toBe(newReadsOld);
        expect(checkCompatibility('FORWARD', candidate, [previous]).length === 0).toBe(oldReadsNew);
        expect(checkCompatibility('FULL', candidate, [previous]).length === 0).toBe(
          newReadsOld && oldReadsNew,
        );
      }),
    );
  });
});

describe('reasons inside a nullable record', () => {
  const envelope = (fields: unknown[]) => ({
    type: 'record',
    name: 'ChangeEvent',
    fields: [{ name: 'after', type: ['null', { type: 'record', name: 'Citizen', fields }], default: null }],
  });

  it('names the nested field that broke, not only the union around it', () => {
    const writer = envelope([{ name: 'id', type: 'string' }]);
    const reader = envelope([
      { name: 'id', type: 'string' },
      { name: 'blood_type', type: 'string' },
    ]);
    const problems = checkReaderWriter(reader, writer);
    expect(problems.map((problem) => problem.type)).toEqual([
      'MISSING_UNION_BRANCH',
      'READER_FIELD_MISSING_DEFAULT_VALUE',
    ]);
    expect(problems[1]?.message).toContain("field 'after.blood_type' without a default value");
  });
});
