import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checkAdministrativeCode,
  checkPersonalId,
  checkTaxCode,
  formatPersonalId,
  formatTaxCode,
  taxCodeCheckDigit,
  type Gender,
} from '../../../schemas/model/identifiers.ts';

const rules = (problems: { rule: string }[]): string[] => problems.map((p) => p.rule).sort();

const digitString = (length: number): fc.Arbitrary<string> =>
  fc.string({ unit: fc.constantFrom(...'0123456789'), minLength: length, maxLength: length });

/** Characters that are not ASCII digits, including digits of other scripts that must still be refused. */
const nonDigit = fc.constantFrom('a', 'O', 'l', '-', ' ', '.', '١', '０', 'Đ');

// ---------------------------------------------------------------- personal identification number

/** A set of 2-digit province codes plus one code drawn from it. */
const provinces = fc
  .uniqueArray(digitString(2), { minLength: 1, maxLength: 40 })
  .chain((codes) => fc.record({ set: fc.constant(new Set(codes)), code: fc.constantFrom(...codes) }));

const birthDate = fc
  .record({
    year: fc.integer({ min: 1900, max: 2199 }),
    month: fc.integer({ min: 1, max: 12 }),
    day: fc.integer({ min: 1, max: 28 }),
  })
  .map(({ year, month, day }) => `${year}-${String(month).padStart(2, '0')}-${String(day).padStart(2, '0')}`);

const gender = fc.constantFrom<Gender>('M', 'F');

/** A valid personal ID with the context it was built from. */
const person = fc
  .record({ provinces, birthDate, gender, serial: fc.integer({ min: 0, max: 999_999 }) })
  .map(({ provinces: { set, code }, birthDate: date, gender: g, serial }) => ({
    id: formatPersonalId(code, date, g, serial),
    year: Number(date.slice(0, 4)),
    province: code,
    serial,
    context: { provinceCodes: set, birthDate: date, gender: g },
  }));

/** The century/gender digit computed from the rule table, independently of the code under test. */
function expectedCenturyDigit(year: number, g: Gender): number {
  const table: Record<number, [number, number]> = { 19: [0, 1], 20: [2, 3], 21: [4, 5] };
  const row = table[Math.floor(year / 100)];
  if (row === undefined) throw new Error(`no century digit for ${year}`);
  return g === 'M' ? row[0] : row[1];
}

const replaceAt = (s: string, index: number, text: string): string =>
  s.slice(0, index) + text + s.slice(index + text.length);

describe('personal identification numbers', () => {
  it('formatPersonalId lays out province, century/gender digit, birth year and serial as PPP G YY NNNNNN', () => {
    fc.assert(
      fc.property(person, ({ id, year, province, serial, context }) => {
        expect(id).toMatch(/^\d{12}$/);
        expect(id.slice(0, 3)).toBe(`0${province}`);
        expect(id.charAt(3)).toBe(String(expectedCenturyDigit(year, context.gender)));
        expect(id.slice(4, 6)).toBe(String(year).slice(2));
        expect(Number(id.slice(6))).toBe(serial);
      }),
    );
  });

  it('accepts every ID built from a known province, a birth date, a gender and a serial', () => {
    fc.assert(
      fc.property(person, ({ id, context }) => {
        expect(checkPersonalId(id, context)).toEqual([]);
      }),
    );
  });

  it('reports a changed century/gender digit as contradicting the birth year, the gender, or both', () => {
    fc.assert(
      fc.property(person, fc.integer({ min: 1, max: 5 }), ({ id, year, context }, shift) => {
        const original = Number(id.charAt(3));
        const changed = (original + shift) % 6;
        const mutated = replaceAt(id, 3, String(changed));
        const expected: string[] = [];
        if (Math.floor(changed / 2) !== Math.floor(original / 2)) expected.push('personal-id.century');
        if (changed % 2 !== original % 2) expected.push('personal-id.gender');

        const problems = checkPersonalId(mutated, context);
        expect(rules(problems)).toEqual(expected.sort());
        if (expected.includes('personal-id.century')) {
          expect(problems.map((p) => p.message)).toContain(
            `${mutated}: century/gender digit ${changed} contradicts birth year ${year}`,
          );
        }
        for (const problem of problems) expect(problem.message.startsWith(`${mutated}: `)).toBe(true);
      }),
    );
  });

  it('refuses a century/gender digit of 6 to 9 whatever the context says', () => {
    fc.assert(
      fc.property(
        person,
        fc.integer({ min: 6, max: 9 }),
        fc.boolean(),
        ({ id, context }, digit, withContext) => {
          const mutated = replaceAt(id, 3, String(digit));
          const problems = checkPersonalId(
            mutated,
            withContext ? context : { provinceCodes: context.provinceCodes },
          );
          expect(problems).toEqual([
            {
              rule: 'personal-id.century-gender-digit',
              message: `${mutated}: century/gender digit ${digit} is not one of 0–5`,
            },
          ]);
        },
      ),
    );
  });

  it('reports birth-year digits that contradict the known birth year', () => {
    fc.assert(
      fc.property(person, fc.integer({ min: 1, max: 99 }), ({ id, year, context }, shift) => {
        const yy = String((year + shift) % 100).padStart(2, '0');
        const mutated = replaceAt(id, 4, yy);
        expect(checkPersonalId(mutated, context)).toEqual([
          {
            rule: 'personal-id.birth-year',
            message: `${mutated}: birth year digits ${yy} contradict birth year ${year}`,
          },
        ]);
      }),
    );
  });

  it('reports a province of birth registration that is not in the given set', () => {
    const unknownProvince = fc.oneof(
      digitString(2).map((code) => `0${code}`),
      fc.tuple(fc.integer({ min: 1, max: 9 }), digitString(2)).map(([first, rest]) => `${first}${rest}`),
    );
    fc.assert(
      fc.property(person, unknownProvince, ({ id, context }, ppp) => {
        fc.pre(!(ppp.startsWith('0') && context.provinceCodes.has(ppp.slice(1))));
        const mutated = replaceAt(id, 0, ppp);
        expect(checkPersonalId(mutated, context)).toEqual([
          {
            rule: 'personal-id.province',
            message: `${mutated}: province code ${ppp} is not a known province of birth registration`,
          },
        ]);
      }),
    );
  });

  it('does not check century, gender or birth year against facts the caller does not know', () => {
    fc.assert(
      fc.property(person, fc.integer({ min: 0, max: 5 }), digitString(2), ({ id, context }, digit, yy) => {
        const mutated = replaceAt(replaceAt(id, 3, String(digit)), 4, yy);
        expect(checkPersonalId(mutated, { provinceCodes: context.provinceCodes })).toEqual([]);
      }),
    );
  });

  it('checks only the gender half of the digit when the gender is known but the birth date is not', () => {
    fc.assert(
      fc.property(person, fc.integer({ min: 0, max: 5 }), ({ id, context }, digit) => {
        const mutated = replaceAt(id, 3, String(digit));
        const digitGender: Gender = digit % 2 === 0 ? 'M' : 'F';
        const problems = checkPersonalId(mutated, {
          provinceCodes: context.provinceCodes,
          gender: context.gender,
        });
        expect(rules(problems)).toEqual(digitGender === context.gender ? [] : ['personal-id.gender']);
      }),
    );
  });

  it('reports anything but exactly 12 digits as a format problem', () => {
    const wrongLength = fc
      .integer({ min: 0, max: 20 })
      .filter((n) => n !== 12)
      .chain((n) => digitString(n));
    fc.assert(
      fc.property(wrongLength, provinces, (id, { set }) => {
        expect(checkPersonalId(id, { provinceCodes: set })).toEqual([
          { rule: 'personal-id.format', message: `${id === '' ? '(empty)' : id}: not 12 digits` },
        ]);
      }),
    );
  });

  it('names the first non-digit character and its position', () => {
    fc.assert(
      fc.property(person, fc.integer({ min: 0, max: 11 }), nonDigit, ({ id, context }, index, char) => {
        const mutated = replaceAt(id, index, char);
        expect(checkPersonalId(mutated, context)).toEqual([
          {
            rule: 'personal-id.format',
            message: `${mutated}: character "${char}" at position ${index + 1} is not a digit`,
          },
        ]);
      }),
    );
  });

  it('explains the examples from the domain notes', () => {
    const provinceCodes = new Set(['01', '79']);
    expect(checkPersonalId('001099012345', { provinceCodes, birthDate: '2001-03-04' })).toEqual([
      {
        rule: 'personal-id.century',
        message: '001099012345: century/gender digit 0 contradicts birth year 2001',
      },
      {
        rule: 'personal-id.birth-year',
        message: '001099012345: birth year digits 99 contradict birth year 2001',
      },
    ]);
    expect(checkPersonalId('099204012345', { provinceCodes })).toEqual([
      {
        rule: 'personal-id.province',
        message: '099204012345: province code 099 is not a known province of birth registration',
      },
    ]);
    expect(checkPersonalId('12345', { provinceCodes })).toEqual([
      { rule: 'personal-id.format', message: '12345: not 12 digits' },
    ]);
    expect(checkPersonalId('079301000001', { provinceCodes, birthDate: '2001-12-31', gender: 'F' })).toEqual(
      [],
    );
    expect(checkPersonalId('079301000001', { provinceCodes, birthDate: '2001-12-31', gender: 'M' })).toEqual([
      {
        rule: 'personal-id.gender',
        message: '079301000001: century/gender digit 3 (female) contradicts gender M (male)',
      },
    ]);
  });

  it('reports a birth date that is not YYYY-MM-DD instead of guessing its year', () => {
    expect(
      rules(checkPersonalId('079301000001', { provinceCodes: new Set(['79']), birthDate: '31/12/2001' })),
    ).toEqual(['personal-id.birth-date']);
  });
});

// ---------------------------------------------------------------- enterprise / tax code

const WEIGHTS = [31, 29, 23, 19, 17, 13, 7, 5, 3];

/** 10 − (weighted sum mod 11), computed here from the rule, not by the code under test. */
function referenceCheck(first9: string): number {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += (WEIGHTS[i] ?? Number.NaN) * Number(first9[i]);
  return 10 - (sum % 11);
}

const nineDigits = digitString(9);
const issuable = nineDigits.filter((s) => referenceCheck(s) <= 9);
const unissuable = nineDigits.filter((s) => referenceCheck(s) >= 10);
const branchSuffix = fc.integer({ min: 1, max: 999 }).map((n) => String(n).padStart(3, '0'));

describe('enterprise / tax codes', () => {
  it('computes the check digit by the weights 31 29 23 19 17 13 7 5 3, or null when it would be 10 or 11', () => {
    fc.assert(
      fc.property(nineDigits, (first9) => {
        const reference = referenceCheck(first9);
        expect(taxCodeCheckDigit(first9)).toBe(reference >= 10 ? null : reference);
      }),
    );
  });

  it('accepts nine digits followed by their check digit', () => {
    fc.assert(
      fc.property(issuable, (first9) => {
        expect(checkTaxCode(`${first9}${referenceCheck(first9)}`)).toEqual([]);
      }),
    );
  });

  it('reports any other final digit as a wrong check digit, naming both digits', () => {
    fc.assert(
      fc.property(issuable, fc.integer({ min: 1, max: 9 }), (first9, shift) => {
        const right = referenceCheck(first9);
        const wrong = (right + shift) % 10;
        const code = `${first9}${wrong}`;
        expect(checkTaxCode(code)).toEqual([
          { rule: 'tax-code.check-digit', message: `${code}: check digit ${wrong} should be ${right}` },
        ]);
      }),
    );
  });

  it('reports every code whose first nine digits give check value 10 as one that cannot be issued', () => {
    fc.assert(
      fc.property(unissuable, fc.integer({ min: 0, max: 9 }), (first9, last) => {
        expect(rules(checkTaxCode(`${first9}${last}`))).toEqual(['tax-code.unissuable']);
      }),
    );
  });

  it('formatTaxCode builds province + 7-digit sequence + check digit, or null when it cannot be issued', () => {
    fc.assert(
      fc.property(digitString(2), fc.integer({ min: 0, max: 9_999_999 }), (province, sequence) => {
        const first9 = `${province}${String(sequence).padStart(7, '0')}`;
        const reference = referenceCheck(first9);
        const code = formatTaxCode(province, sequence);
        if (reference >= 10) {
          expect(code).toBeNull();
        } else {
          expect(code).toBe(`${first9}${reference}`);
          expect(checkTaxCode(code ?? '')).toEqual([]);
        }
      }),
    );
  });

  it('formatTaxCode refuses a malformed province or an out-of-range sequence', () => {
    expect(() => formatTaxCode('123', 1)).toThrow(RangeError);
    expect(() => formatTaxCode('A1', 1)).toThrow(RangeError);
    expect(() => formatTaxCode('01', -1)).toThrow(RangeError);
    expect(() => formatTaxCode('01', 10_000_000)).toThrow(RangeError);
    expect(() => formatTaxCode('01', 1.5)).toThrow(RangeError);
  });

  it('accepts a branch code 001–999 under a valid parent', () => {
    fc.assert(
      fc.property(issuable, branchSuffix, (first9, suffix) => {
        expect(checkTaxCode(`${first9}${referenceCheck(first9)}-${suffix}`)).toEqual([]);
      }),
    );
  });

  it('reports a branch under an invalid parent as a wrong check digit', () => {
    fc.assert(
      fc.property(issuable, fc.integer({ min: 1, max: 9 }), branchSuffix, (first9, shift, suffix) => {
        const right = referenceCheck(first9);
        const wrong = (right + shift) % 10;
        const code = `${first9}${wrong}-${suffix}`;
        expect(checkTaxCode(code)).toEqual([
          { rule: 'tax-code.check-digit', message: `${code}: check digit ${wrong} should be ${right}` },
        ]);
      }),
    );
  });

  it('reports branch number 000', () => {
    fc.assert(
      fc.property(issuable, (first9) => {
        const code = `${first9}${referenceCheck(first9)}-000`;
        expect(checkTaxCode(code)).toEqual([
          { rule: 'tax-code.branch', message: `${code}: branch number 000 is not in 001–999` },
        ]);
      }),
    );
  });

  it('reports anything but 10 digits or 10 digits-3 digits as a format problem', () => {
    const malformed = fc.oneof(
      fc
        .integer({ min: 0, max: 16 })
        .filter((n) => n !== 10)
        .chain((n) => digitString(n)),
      fc.tuple(digitString(10), nonDigit).map(([code, char]) => `${code.slice(0, 4)}${char}${code.slice(5)}`),
      fc.tuple(digitString(10), digitString(2)).map(([code, suffix]) => `${code}-${suffix}`),
      fc.tuple(digitString(10), digitString(4)).map(([code, suffix]) => `${code}-${suffix}`),
      fc.tuple(digitString(10), digitString(3)).map(([code, suffix]) => `${code} ${suffix}`),
    );
    fc.assert(
      fc.property(malformed, (code) => {
        expect(rules(checkTaxCode(code))).toEqual(['tax-code.format']);
      }),
    );
  });

  it('tells the clerk to write a 13-digit branch code with a hyphen', () => {
    expect(checkTaxCode('0314409058002')).toEqual([
      {
        rule: 'tax-code.format',
        message:
          '0314409058002: branch codes are written with a hyphen after the 10th digit (0314409058-002)',
      },
    ]);
  });

  it('judges the examples from the domain notes', () => {
    expect(referenceCheck('010023348')).toBe(8);
    expect(checkTaxCode('0100233488')).toEqual([]);
    expect(checkTaxCode('0100233480')).toEqual([
      { rule: 'tax-code.check-digit', message: '0100233480: check digit 0 should be 8' },
    ]);
    // 0·31 + 3·29 + 1·23 + 4·19 + 4·17 + 0·13 + 9·7 + 0·5 + 5·3 = 332; 332 mod 11 = 2; 10 − 2 = 8: the parent is valid.
    expect(referenceCheck('031440905')).toBe(8);
    expect(checkTaxCode('0314409058')).toEqual([]);
    expect(checkTaxCode('0314409058-002')).toEqual([]);
    // 010000005: weighted sum 29 + 15 = 44 ≡ 0 (mod 11), so the check value is 10.
    expect(taxCodeCheckDigit('010000005')).toBeNull();
    expect(formatTaxCode('01', 5)).toBeNull();
    expect(formatTaxCode('01', 23_348)).toBe('0100233488');
  });
});

// ---------------------------------------------------------------- administrative codes

describe('administrative codes', () => {
  for (const [kind, digits] of [
    ['province', 2],
    ['commune', 5],
  ] as const) {
    it(`accepts a ${kind} code in the code list and reports one that is not`, () => {
      fc.assert(
        fc.property(
          fc.uniqueArray(digitString(digits), { minLength: 1, maxLength: 30 }),
          digitString(digits),
          (codes, code) => {
            const known = new Set(codes);
            const problems = checkAdministrativeCode(code, kind, known);
            if (known.has(code)) {
              expect(problems).toEqual([]);
            } else {
              expect(problems).toEqual([
                { rule: `${kind}-code.unknown`, message: `${code}: not a known ${kind} code` },
              ]);
            }
            const member = codes[0] ?? '';
            expect(checkAdministrativeCode(member, kind, known)).toEqual([]);
          },
        ),
      );
    });

    it(`reports a ${kind} code that is not exactly ${digits} digits, even when the list contains it`, () => {
      const malformed = fc.oneof(
        fc
          .integer({ min: 0, max: 8 })
          .filter((n) => n !== digits)
          .chain((n) => digitString(n)),
        fc
          .tuple(digitString(digits), fc.integer({ min: 0, max: digits - 1 }), nonDigit)
          .map(([code, index, char]) => replaceAt(code, index, char)),
      );
      fc.assert(
        fc.property(malformed, (code) => {
          const problems = checkAdministrativeCode(code, kind, new Set([code]));
          expect(rules(problems)).toEqual([`${kind}-code.format`]);
          expect(problems[0]?.message).toMatch(
            /^.+: (not \d digits|character ".+" at position \d is not a digit) \(/,
          );
        }),
      );
    });
  }

  it('names the kind and the digits in its messages', () => {
    expect(checkAdministrativeCode('99', 'province', new Set(['01']))).toEqual([
      { rule: 'province-code.unknown', message: '99: not a known province code' },
    ]);
    expect(checkAdministrativeCode('0004', 'commune', new Set(['00004']))).toEqual([
      { rule: 'commune-code.format', message: '0004: not 5 digits (commune code)' },
    ]);
  });
});
