import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkFilter,
  compileFilter,
  filterFields,
  formatFilter,
  parseFilter,
  type FilterAst,
  type FilterProblem,
} from '../../../../platform/agreements/filter.ts';
import { sampleCitizens } from '../../../../producers/sample/citizens.ts';
import { DatasetSchema, type Dataset, type Field } from '../../../../schemas/model/dataset.ts';
import { getDataset, loadDictionary } from '../../../../schemas/model/dictionary.ts';

const dictionary = loadDictionary();
const citizenDataset = getDataset(dictionary, 'population.citizen');
const parcelDataset = getDataset(dictionary, 'land.parcel');
const citizens = sampleCitizens(300);

const text = { vi: 'thử', en: 'test' };
/** No dataset of the dictionary has a record field outside an array, so this one is made up. */
const personDataset: Dataset = DatasetSchema.parse({
  id: 'test.person',
  owner: 'BCA',
  kind: 'shared',
  description: text,
  key: { field: 'person_id' },
  retention: 'unlimited',
  fields: [
    { name: 'person_id', type: 'string', required: true, classification: 'public', description: text },
    {
      name: 'residence',
      type: 'record',
      required: false,
      classification: 'internal',
      description: text,
      fields: [
        {
          name: 'province_code',
          type: 'code',
          codeList: 'province',
          required: true,
          classification: 'internal',
          description: text,
        },
        { name: 'street', type: 'string', required: false, classification: 'internal', description: text },
      ],
    },
    { name: 'updated_at', type: 'timestamp', required: true, classification: 'public', description: text },
    { name: 'visits', type: 'long', required: true, classification: 'public', description: text },
    { name: 'verified', type: 'boolean', required: true, classification: 'public', description: text },
    {
      name: 'income',
      type: 'decimal',
      precision: 15,
      scale: 2,
      required: false,
      classification: 'personal',
      description: text,
    },
  ],
});

function parsed(source: string): FilterAst {
  const result = parseFilter(source);
  if (!result.ok) throw new Error(`${source}: ${rendered(result.problems).join('; ')}`);
  return result.ast;
}

function rendered(problems: FilterProblem[]): string[] {
  return problems.map((problem) => `at ${problem.position}: ${problem.message}`);
}

function parseProblems(source: string): string[] {
  const result = parseFilter(source);
  return result.ok ? [] : rendered(result.problems);
}

function typeProblems(source: string, dataset: Dataset = citizenDataset): string[] {
  return rendered(checkFilter(parsed(source), dataset, dictionary));
}

/** Parses, type-checks (must be clean) and compiles against the dataset. */
function predicate(source: string, dataset: Dataset = citizenDataset) {
  const ast = parsed(source);
  expect(rendered(checkFilter(ast, dataset, dictionary))).toEqual([]);
  return compileFilter(ast, dataset);
}

const keysMatching = (source: string) =>
  citizens.filter(predicate(source)).map((citizen) => citizen.personal_id);
const keysWhere = (test: (citizen: (typeof citizens)[number]) => boolean) =>
  citizens.filter(test).map((citizen) => citizen.personal_id);

describe('agreement row filters on the DOMAIN sample agreements', () => {
  it('UBND-HN receives exactly the citizens living in province 01, UBND-HCM those in 79', () => {
    const hanoi = keysWhere((citizen) => citizen.province_code === '01');
    const hcm = keysWhere((citizen) => citizen.province_code === '79');
    expect(hanoi.length).toBeGreaterThan(10);
    expect(hcm.length).toBeGreaterThan(10);
    expect(hanoi.length + hcm.length).toBeLessThan(citizens.length);
    expect(keysMatching('province_code in ["01"]')).toEqual(hanoi);
    expect(keysMatching('province_code == "01"')).toEqual(hanoi);
    expect(keysMatching('province_code == "79"')).toEqual(hcm);
  });

  it('a citizen who moved from Hà Nội to TP HCM no longer matches province_code in ["01"]', () => {
    const hanoian = citizens.find((citizen) => citizen.province_code === '01')!;
    const moved = { ...hanoian, province_code: '79', commune_code: '26734' };
    const hanoiFilter = predicate('province_code in ["01"]');
    const hcmFilter = predicate('province_code == "79"');
    expect(hanoiFilter(hanoian)).toBe(true);
    expect(hanoiFilter(moved)).toBe(false);
    expect(hcmFilter(moved)).toBe(true);
  });

  it('province_code == "79" and not (death_date is not null) keeps the living citizens of TP HCM', () => {
    const living = predicate('province_code == "79" and not (death_date is not null)');
    const hcm = citizens.find((citizen) => citizen.province_code === '79')!;
    expect(living(hcm)).toBe(true);
    expect(living({ ...hcm, death_date: '2024-03-01' })).toBe(false);
    expect(living({ ...hcm, province_code: '01' })).toBe(false);
  });

  it('the filter "true" shares every row (the BHXH and BTC agreements)', () => {
    expect(keysMatching('true')).toHaveLength(citizens.length);
  });
});

describe('filter syntax', () => {
  it('and binds tighter than or: a or b and c is a or (b and c)', () => {
    const a = { kind: 'compare', path: ['gender'], op: '==', value: 'F' } as const;
    const b = { kind: 'compare', path: ['province_code'], op: '==', value: '01' } as const;
    const c = { kind: 'isNull', path: ['death_date'] } as const;
    expect(parsed('gender == "F" or province_code == "01" and death_date is null')).toEqual({
      kind: 'or',
      operands: [a, { kind: 'and', operands: [b, c] }],
    });
    // a true, b and c false: true under a or (b and c), false under (a or b) and c
    const record = { gender: 'F', province_code: '79', death_date: '2020-01-01' };
    expect(predicate('gender == "F" or province_code == "01" and death_date is null')(record)).toBe(true);
    expect(predicate('(gender == "F" or province_code == "01") and death_date is null')(record)).toBe(false);
  });

  it('parentheses keep their grouping and chains of one operator stay flat', () => {
    expect(parsed('gender == "F" and province_code == "01" and true')).toMatchObject({
      kind: 'and',
      operands: [{ kind: 'compare' }, { kind: 'compare' }, { kind: 'true' }],
    });
    expect(parsed('(gender == "F" and province_code == "01") and true')).toMatchObject({
      kind: 'and',
      operands: [{ kind: 'and' }, { kind: 'true' }],
    });
    expect(parsed('((gender == "F"))')).toEqual({ kind: 'compare', path: ['gender'], op: '==', value: 'F' });
  });

  it('not applies to the next unary: not a and b is (not a) and b', () => {
    expect(parsed('not gender == "F" and province_code == "01"')).toMatchObject({
      kind: 'and',
      operands: [{ kind: 'not', operand: { kind: 'compare', path: ['gender'] } }, { kind: 'compare' }],
    });
    expect(parsed('not not true')).toEqual({
      kind: 'not',
      operand: { kind: 'not', operand: { kind: 'true' } },
    });
    const notFemale = predicate('not gender == "F" and province_code == "01"');
    expect(notFemale({ gender: 'M', province_code: '01' })).toBe(true);
    expect(notFemale({ gender: 'F', province_code: '01' })).toBe(false);
    expect(notFemale({ gender: 'M', province_code: '79' })).toBe(false);
  });

  it('reads every comparison form, values with escapes and negative numbers', () => {
    expect(parsed('full_name startsWith "Nguyễn \\"Bé\\" \\\\"')).toEqual({
      kind: 'startsWith',
      path: ['full_name'],
      prefix: 'Nguyễn "Bé" \\',
    });
    expect(parsed('birth_date between "1960-01-01" and "2000-12-31"')).toEqual({
      kind: 'between',
      path: ['birth_date'],
      low: '1960-01-01',
      high: '2000-12-31',
    });
    expect(parsed('x.y>=-1.5e3')).toEqual({ kind: 'compare', path: ['x', 'y'], op: '>=', value: -1500 });
    expect(parsed('a in [1, true, "s"]')).toEqual({ kind: 'in', path: ['a'], values: [1, true, 's'] });
    expect(parsed('a is not null')).toEqual({ kind: 'isNotNull', path: ['a'] });
  });

  it('formats the canonical text, which parses back to the same AST', () => {
    const ast = parsed('province_code=="79"and not(death_date is not null)or(gender=="F"or true)');
    expect(formatFilter(ast)).toBe(
      '(province_code == "79" and not (death_date is not null)) or (gender == "F" or true)',
    );
    const nested = parsed('a == 1 or b == 2 and c in [1,2]');
    expect(formatFilter(nested)).toBe('a == 1 or (b == 2 and c in [1, 2])');
    expect(parsed(formatFilter(nested))).toEqual(nested);
  });
});

describe('filter evaluation', () => {
  it('between is inclusive on both bounds and compares dates in ISO order', () => {
    const between = predicate('birth_date between "1960-01-01" and "2000-12-31"');
    expect(between({ birth_date: '1960-01-01' })).toBe(true);
    expect(between({ birth_date: '2000-12-31' })).toBe(true);
    expect(between({ birth_date: '1959-12-31' })).toBe(false);
    expect(between({ birth_date: '2001-01-01' })).toBe(false);
    expect(keysMatching('birth_date between "1960-01-01" and "2000-12-31"')).toEqual(
      keysWhere((c) => String(c.birth_date) >= '1960-01-01' && String(c.birth_date) <= '2000-12-31'),
    );
  });

  it('startsWith matches a Vietnamese surname', () => {
    const nguyen = keysWhere((c) => String(c.full_name).startsWith('Nguyễn'));
    expect(nguyen.length).toBeGreaterThan(0);
    expect(keysMatching('full_name startsWith "Nguyễn"')).toEqual(nguyen);
    expect(predicate('full_name startsWith "Nguyễn"')({ full_name: 'Nguyen Van An' })).toBe(false);
  });

  it('a null or absent field matches no comparison; only is null matches it', () => {
    const filters = [
      'death_date == "2020-01-01"',
      'death_date != "2020-01-01"',
      'death_date < "2100-01-01"',
      'death_date between "1900-01-01" and "2100-01-01"',
      'death_date in ["2020-01-01"]',
      'permanent_address startsWith ""',
      'death_date is not null',
    ];
    for (const record of [{ death_date: null, permanent_address: null }, {}]) {
      for (const filter of filters) expect(predicate(filter)(record), filter).toBe(false);
      expect(predicate('death_date is null')(record)).toBe(true);
      expect(predicate('not (death_date < "2100-01-01")')(record)).toBe(true);
    }
    expect(predicate('death_date != "2020-01-01"')({ death_date: '2021-05-05' })).toBe(true);
    expect(predicate('death_date is null')({ death_date: '2021-05-05' })).toBe(false);
  });

  it('reads a nested record field through a dotted path', () => {
    const inHanoi = predicate(
      'residence.province_code == "01" and residence.street is not null',
      personDataset,
    );
    expect(inHanoi({ residence: { province_code: '01', street: 'Phố Huế' } })).toBe(true);
    expect(inHanoi({ residence: { province_code: '79', street: 'Lê Lợi' } })).toBe(false);
    expect(inHanoi({ residence: null })).toBe(false);
    expect(predicate('residence is null', personDataset)({ residence: null })).toBe(true);
    expect(predicate('residence.street is null', personDataset)({ residence: null })).toBe(true);
  });

  it('compares timestamps by time whatever their offset, and decimals numerically', () => {
    const after = predicate('updated_at > "2025-07-01T07:00:00+07:00"', personDataset);
    expect(after({ updated_at: new Date('2025-07-01T00:00:00Z') })).toBe(false);
    expect(after({ updated_at: new Date('2025-07-01T00:00:00.001Z') })).toBe(true);
    expect(after({ updated_at: '2025-07-01T08:00:00+07:00' })).toBe(true);

    const rich = predicate('income >= 100', personDataset);
    expect(rich({ income: '99.99' })).toBe(false);
    expect(rich({ income: '100.00' })).toBe(true);
    expect(rich({ income: '1000' })).toBe(true); // "1000" < "100" as text; numerically it is larger
    const exact = predicate('income == "100" or income in ["0.1", -2.5]', personDataset);
    expect(exact({ income: '100.00' })).toBe(true);
    expect(exact({ income: '0.10' })).toBe(true);
    expect(exact({ income: '-2.50' })).toBe(true);
    expect(exact({ income: '100.01' })).toBe(false);
    // decimals beyond double precision stay exact
    const huge = predicate('income > "9007199254740993.01"', personDataset);
    expect(huge({ income: '9007199254740993.02' })).toBe(true);
    expect(huge({ income: '9007199254740993.00' })).toBe(false);
    // without the dataset a number literal still compares numerically with a decimal string
    expect(compileFilter(parsed('income >= 100'))({ income: '1000.00' })).toBe(true);
  });

  it('compares longs and booleans', () => {
    const busy = predicate('visits > 10 and verified == true', personDataset);
    expect(busy({ visits: 11, verified: true })).toBe(true);
    expect(busy({ visits: 11, verified: false })).toBe(false);
    expect(busy({ visits: 10, verified: true })).toBe(false);
  });
});

describe('filter problems say what is wrong and where', () => {
  it.each([
    ['== "01"', 'at 0: expected a field name, found "=="'],
    ['', 'at 0: expected a field name, found the end of the filter'],
    ['province_code = "01"', 'at 14: "=" is not an operator: write "==" to compare'],
    ['province_code == "01', 'at 17: unterminated string: a closing " is missing'],
    ['full_name == "a\\nb"', 'at 15: unknown escape "\\n": inside a string only \\" and \\\\ are escapes'],
    [
      'province_code IN ["01"]',
      'at 14: expected an operator after "province_code" (==, !=, <, <=, >, >=, in, between, startsWith or is), found "IN" (keywords are case-sensitive: write "in")',
    ],
    [
      'gender == "F" AND true',
      'at 14: expected "and", "or" or the end of the filter, found "AND" (keywords are case-sensitive: write "and")',
    ],
    [
      'full_name startswith "Ng"',
      'at 10: expected an operator after "full_name" (==, !=, <, <=, >, >=, in, between, startsWith or is), found "startswith" (keywords are case-sensitive: write "startsWith")',
    ],
    ['(gender == "F" or true', 'at 22: expected ")" to close the "(" at 0, found the end of the filter'],
    ['province_code in []', 'at 18: an "in" list needs at least one value'],
    ['province_code in ["01" "79"]', 'at 23: expected "," or "]" in the "in" list, found "79"'],
    [
      'death_date == null',
      'at 14: null is not a value: write "death_date is null" to test for a missing value',
    ],
    ['death_date is nul', 'at 14: expected "null" or "not null" after "is", found "nul"'],
    [
      'birth_date between "1960-01-01" or "2000-01-01"',
      'at 32: expected "and" between the two bounds of "between", found "or"',
    ],
    ['full_name startsWith 1', 'at 21: expected a string in double quotes after "startsWith", found "1"'],
    ['gender == "F" && true', 'at 14: write "and" instead of "&&"'],
    ['land.and == 1', 'at 5: expected a field name after ".", found "and" ("and" is a keyword)'],
    [`${'('.repeat(70)}true${')'.repeat(70)}`, 'at 64: the filter nests deeper than 64 levels'],
  ])('parse error: %s', (source, message) => {
    expect(parseProblems(source)).toEqual([message]);
  });

  it.each([
    [
      'gender == "M" and provice_code == "01"',
      'at 18: unknown field "provice_code" in population.citizen (did you mean "province_code"?)',
    ],
    ['province_code in ["01", "79", "99"]', 'at 30: "99" is not in the province code list'],
    ['birth_registration_province == "99"', 'at 31: "99" is not in the province-before-2025 code list'],
    [
      'gender < "M"',
      'at 7: "<" does not apply to gender, a code: ordering needs an int, long, decimal, date, timestamp or string field',
    ],
    [
      'birth_date startsWith "19"',
      'at 11: "startsWith" applies to string and code fields only; birth_date is a date',
    ],
    [
      'birth_date == "2023-02-30"',
      'at 14: "2023-02-30" is not a real date written "YYYY-MM-DD" (birth_date is a date)',
    ],
    [
      'birth_date > 1960',
      'at 13: birth_date is a date: expected a date in double quotes, written "YYYY-MM-DD", found 1960',
    ],
    ['full_name == true', 'at 13: full_name is a string: expected a string in double quotes, found true'],
    [
      'gender == 1',
      'at 10: gender is a code: expected a code from the gender code list in double quotes, such as "M", found 1',
    ],
    [
      'nationalities == "VN"',
      'at 0: "nationalities" is an array in population.citizen: a filter cannot look inside an array',
    ],
    ['province_code.name == "x"', 'at 14: "province_code" is a code, not a record: it has no field "name"'],
    [
      'birth_date between "2000-12-31" and "1960-01-01"',
      'at 19: the lower bound "2000-12-31" is above the upper bound "1960-01-01": nothing can match',
    ],
    ['commune_code startsWith "999"', ''],
    ['gender startsWith "X"', 'at 18: no code in the gender code list starts with "X"'],
  ])('type error: %s', (source, message) => {
    expect(typeProblems(source)).toEqual(message === '' ? [] : [message]);
  });

  it('refuses a path into land.parcel holders: the nested records are inside an array', () => {
    expect(typeProblems('area_m2 > 100 and holders.holder_id == "001099012345"', parcelDataset)).toEqual([
      'at 18: "holders" is an array in land.parcel: a filter cannot look inside an array',
    ]);
    expect(typeProblems('holders is not null', parcelDataset)).toEqual([
      'at 0: "holders" is an array in land.parcel: a filter cannot look inside an array',
    ]);
  });

  it('checks ints, longs, decimals, booleans, timestamps and nested fields by their types', () => {
    expect(typeProblems('map_sheet_no == 1.5 or area_m2 > "12,5"', parcelDataset)).toEqual([
      'at 16: map_sheet_no is an int: expected a whole number from -2147483648 to 2147483647, found 1.5',
      'at 33: area_m2 is a decimal: expected a number, or a numeric string such as "1250000.5", found "12,5"',
    ]);
    expect(typeProblems('area_m2 > "100.5" and area_m2 < 1e6 and map_sheet_no >= -3', parcelDataset)).toEqual(
      [],
    );
    expect(
      typeProblems(
        'visits == 9007199254740992 or verified == "yes" or updated_at > "2025-07-01" or residence.provinc_code == "01"',
        personDataset,
      ),
    ).toEqual([
      'at 10: visits is a long: expected a whole number from -9007199254740991 to 9007199254740991, found 9007199254740992',
      'at 42: verified is a boolean: expected true or false, found "yes"',
      'at 64: updated_at is a timestamp: expected an ISO 8601 timestamp with a time zone in double quotes, such as "2025-07-01T00:00:00+07:00", found "2025-07-01"',
      'at 90: unknown field "provinc_code" in record "residence" of test.person (did you mean "province_code"?)',
    ]);
    expect(typeProblems('residence == "01"', personDataset)).toEqual([
      'at 10: residence is a record: only "is null" and "is not null" apply to it; compare one of its fields, such as residence.province_code',
    ]);
    expect(typeProblems('residence.province_code == "99"', personDataset)).toEqual([
      'at 27: "99" is not in the province code list',
    ]);
  });

  it('limits an in list to 1000 values and points at the first one too many', () => {
    const values = Array.from({ length: 1001 }, () => '"01"');
    const source = `province_code in [${values.join(', ')}]`;
    expect(typeProblems(source)).toEqual([
      `at ${source.lastIndexOf('"01"')}: an "in" list holds at most 1000 values; this one has 1001`,
    ]);
    expect(typeProblems(`province_code in [${values.slice(1).join(', ')}]`)).toEqual([]);
    const empty: FilterAst = { kind: 'in', path: ['province_code'], values: [] };
    expect(rendered(checkFilter(empty, citizenDataset, dictionary))).toEqual([
      'at 14: an "in" list needs at least one value',
    ]);
  });

  it('gives positions in the canonical text for an AST read back from jsonb', () => {
    const ast = parsed('gender=="M"   and   provice_code=="01"');
    expect(typeProblems('gender=="M"   and   provice_code=="01"')[0]).toMatch(
      /^at 20: unknown field "provice_code"/,
    );
    const stored = JSON.parse(JSON.stringify(ast)) as FilterAst;
    expect(stored).toEqual(ast);
    // canonical text: gender == "M" and provice_code == "01"
    expect(rendered(checkFilter(stored, citizenDataset, dictionary))).toEqual([
      'at 18: unknown field "provice_code" in population.citizen (did you mean "province_code"?)',
    ]);
  });
});

describe('filterFields', () => {
  it('lists the top-level fields a filter reads, sorted and once each', () => {
    expect(
      filterFields(
        parsed(
          'province_code == "01" and (birth_date > "1960-01-01" or not (death_date is null)) and province_code != "79"',
        ),
      ),
    ).toEqual(['birth_date', 'death_date', 'province_code']);
    expect(filterFields(parsed('residence.province_code in ["01"] or residence is null'))).toEqual([
      'residence',
    ]);
    expect(filterFields(parsed('true'))).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// Properties over population.citizen fields

const ops = ['==', '!=', '<', '<=', '>', '>='] as const;
const citizenPaths = citizenDataset.fields.map((field) => [field.name]);
const anyPath = fc.constantFrom(...citizenPaths);
const anyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'binary' }),
  fc.constantFrom('"', '\\', '\\"', 'a"b\\c', 'Nguyễn', ''),
);
const anyValue = fc.oneof(
  anyString,
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
  fc.boolean(),
);

function astArbitrary(leaf: fc.Arbitrary<FilterAst>): fc.Arbitrary<FilterAst> {
  return fc.letrec<{ ast: FilterAst }>((tie) => ({
    ast: fc.oneof(
      { maxDepth: 4, depthIdentifier: 'filter' },
      leaf,
      fc
        .tuple(tie('ast'), tie('ast'), fc.array(tie('ast'), { maxLength: 2 }))
        .map(([a, b, rest]): FilterAst => ({ kind: 'and', operands: [a, b, ...rest] })),
      fc
        .tuple(tie('ast'), tie('ast'), fc.array(tie('ast'), { maxLength: 2 }))
        .map(([a, b, rest]): FilterAst => ({ kind: 'or', operands: [a, b, ...rest] })),
      tie('ast').map((operand): FilterAst => ({ kind: 'not', operand })),
    ),
  })).ast;
}

const anyLeaf: fc.Arbitrary<FilterAst> = fc.oneof(
  fc.constant<FilterAst>({ kind: 'true' }),
  fc
    .record({ path: anyPath, op: fc.constantFrom(...ops), value: anyValue })
    .map((n): FilterAst => ({ kind: 'compare', ...n })),
  fc
    .record({ path: anyPath, values: fc.array(anyValue, { minLength: 1, maxLength: 4 }) })
    .map((n): FilterAst => ({ kind: 'in', ...n })),
  fc
    .record({ path: anyPath, low: anyValue, high: anyValue })
    .map((n): FilterAst => ({ kind: 'between', ...n })),
  fc.record({ path: anyPath, prefix: anyString }).map((n): FilterAst => ({ kind: 'startsWith', ...n })),
  anyPath.map((path): FilterAst => ({ kind: 'isNull', path })),
  anyPath.map((path): FilterAst => ({ kind: 'isNotNull', path })),
);

const realDate = fc
  .date({ min: new Date('1900-01-01T00:00:00Z'), max: new Date('2100-12-31T00:00:00Z'), noInvalidDate: true })
  .map((date) => date.toISOString().slice(0, 10));

/** A leaf comparison that is well typed for one citizen field. */
function typedLeaf(field: Field): fc.Arbitrary<FilterAst> | undefined {
  const path = [field.name];
  const nulls = [
    fc.constant<FilterAst>({ kind: 'isNull', path }),
    fc.constant<FilterAst>({ kind: 'isNotNull', path }),
  ];
  let value: fc.Arbitrary<string>;
  if (field.type === 'code') {
    const codes = dictionary.codeLists.get(field.codeList)!.codes.map((code) => code.code);
    value = fc.constantFrom(...codes);
    return fc.oneof(
      ...nulls,
      fc
        .record({ op: fc.constantFrom('==', '!=' as const), value })
        .map((n): FilterAst => ({ kind: 'compare', path, ...n })),
      fc
        .array(value, { minLength: 1, maxLength: 5 })
        .map((values): FilterAst => ({ kind: 'in', path, values })),
      value.map((code): FilterAst => ({ kind: 'startsWith', path, prefix: code.slice(0, 1) })),
    );
  }
  if (field.type === 'string') value = anyString;
  else if (field.type === 'date') value = realDate;
  else return undefined;
  return fc.oneof(
    ...nulls,
    fc
      .record({ op: fc.constantFrom(...ops), value })
      .map((n): FilterAst => ({ kind: 'compare', path, ...n })),
    fc
      .array(value, { minLength: 1, maxLength: 5 })
      .map((values): FilterAst => ({ kind: 'in', path, values })),
    fc
      .tuple(value, value)
      .map(([a, b]): FilterAst => ({ kind: 'between', path, low: a < b ? a : b, high: a < b ? b : a })),
    ...(field.type === 'string'
      ? [anyString.map((prefix): FilterAst => ({ kind: 'startsWith', path, prefix }))]
      : []),
  );
}

const typedLeaves = citizenDataset.fields.flatMap((field) => typedLeaf(field) ?? []);

describe('filter properties', () => {
  it('formatFilter then parseFilter rebuilds every AST over population.citizen fields', () => {
    fc.assert(
      fc.property(astArbitrary(anyLeaf), (ast) => {
        const result = parseFilter(formatFilter(ast));
        expect(result).toEqual({ ok: true, ast });
        // an AST without positions (as read from jsonb) gets those of its canonical text
        if (result.ok) {
          expect(checkFilter(ast, citizenDataset, dictionary)).toEqual(
            checkFilter(result.ast, citizenDataset, dictionary),
          );
        }
      }),
      { numRuns: 500 },
    );
  });

  it('checkFilter accepts every well-typed filter over population.citizen, and its canonical text too', () => {
    expect(typedLeaves.length).toBeGreaterThan(5);
    fc.assert(
      fc.property(astArbitrary(fc.oneof(...typedLeaves)), (ast) => {
        expect(rendered(checkFilter(ast, citizenDataset, dictionary))).toEqual([]);
        const evaluate = compileFilter(parsed(formatFilter(ast)), citizenDataset);
        const original = compileFilter(ast, citizenDataset);
        for (const citizen of citizens.slice(0, 20)) expect(evaluate(citizen)).toBe(original(citizen));
      }),
      { numRuns: 300 },
    );
  });

  it('not negates: compile(not f) is the opposite of compile(f) on every sample citizen', () => {
    fc.assert(
      fc.property(astArbitrary(fc.oneof(...typedLeaves)), (ast) => {
        const plain = compileFilter(ast, citizenDataset);
        const negated = compileFilter({ kind: 'not', operand: ast }, citizenDataset);
        for (const citizen of citizens.slice(0, 20)) expect(negated(citizen)).toBe(!plain(citizen));
      }),
      { numRuns: 200 },
    );
  });
});
