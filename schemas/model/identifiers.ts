/**
 * Vietnamese identification codes (DOMAIN.md).
 *
 * Personal identification number, 12 digits: PPP G YY NNNNNN
 *   PPP     3-digit province code of birth registration ("0" + the 2-digit province code, e.g. 001 Hà Nội)
 *   G       century and gender: 1900s male 0 / female 1, 2000s 2 / 3, 2100s 4 / 5
 *   YY      last two digits of the birth year
 *   NNNNNN  random digits; there is no check digit
 */
export type Gender = 'M' | 'F';

const CENTURIES = [1900, 2000, 2100] as const;

export function centuryGenderDigit(birthYear: number, gender: Gender): number {
  const index = CENTURIES.findIndex((start) => birthYear >= start && birthYear < start + 100);
  if (index < 0) throw new RangeError(`birth year ${birthYear} is outside 1900–2199`);
  return index * 2 + (gender === 'F' ? 1 : 0);
}

/** Builds a personal ID from its parts; `serial` is the 6-digit random part. */
export function formatPersonalId(
  provinceCode: string,
  birthDate: string,
  gender: Gender,
  serial: number,
): string {
  const year = Number(birthDate.slice(0, 4));
  return `0${provinceCode.padStart(2, '0')}${centuryGenderDigit(year, gender)}${String(year % 100).padStart(2, '0')}${String(serial % 1_000_000).padStart(6, '0')}`;
}

/** A failed rule: machine code + a sentence a clerk understands, naming the digits at fault. */
export interface IdentifierProblem {
  rule: string;
  message: string;
}

/** How an identifier is named at the start of a message (an empty string would leave nothing). */
function shown(value: string): string {
  return value === '' ? '(empty)' : value;
}

/** Why `value` is not exactly `digits` digits, naming the first non-digit character; null when it is. */
function formatProblem(value: string, digits: number): string | null {
  const bad = /\D/.exec(value);
  if (bad !== null) return `character "${bad[0]}" at position ${bad.index + 1} is not a digit`;
  return value.length === digits ? null : `not ${digits} digits`;
}

const GENDER_WORD: Record<Gender, string> = { M: 'male', F: 'female' };
const CENTURY_DIGITS = '012345';

/**
 * Checks a 12-digit personal identification number. `provinceCodes` holds the valid 2-digit province
 * codes (current and former, from the code lists); when the record's `birthDate` (YYYY-MM-DD) and/or
 * `gender` are known, the century/gender digit and the two birth-year digits must agree with them.
 * Returns every failed rule; an empty array means the number is valid.
 */
export function checkPersonalId(
  id: string,
  context: { provinceCodes: ReadonlySet<string>; birthDate?: string; gender?: Gender },
): IdentifierProblem[] {
  const format = formatProblem(id, 12);
  if (format !== null) return [{ rule: 'personal-id.format', message: `${shown(id)}: ${format}` }];
  const problems: IdentifierProblem[] = [];
  const province = id.slice(0, 3);
  const digit = id.charAt(3);
  const yy = id.slice(4, 6);

  if (!(province.startsWith('0') && context.provinceCodes.has(province.slice(1)))) {
    problems.push({
      rule: 'personal-id.province',
      message: `${id}: province code ${province} is not a known province of birth registration`,
    });
  }

  const g = CENTURY_DIGITS.indexOf(digit);
  if (g < 0) {
    problems.push({
      rule: 'personal-id.century-gender-digit',
      message: `${id}: century/gender digit ${digit} is not one of 0–5`,
    });
  }

  if (context.birthDate !== undefined) {
    const match = /^(\d{4})-\d{2}-\d{2}$/.exec(context.birthDate);
    const year = match?.[1] === undefined ? Number.NaN : Number(match[1]);
    if (Number.isNaN(year)) {
      problems.push({
        rule: 'personal-id.birth-date',
        message: `${id}: birth date "${context.birthDate}" is not a YYYY-MM-DD date, so the century/gender digit and birth year digits cannot be checked`,
      });
    } else {
      const century = Math.floor(year / 100) * 100;
      if (g >= 0 && 1900 + Math.floor(g / 2) * 100 !== century) {
        problems.push({
          rule: 'personal-id.century',
          message: `${id}: century/gender digit ${digit} contradicts birth year ${year}`,
        });
      }
      const expectedYy = String(year % 100).padStart(2, '0');
      if (yy !== expectedYy) {
        problems.push({
          rule: 'personal-id.birth-year',
          message: `${id}: birth year digits ${yy} contradict birth year ${year}`,
        });
      }
    }
  }

  if (context.gender !== undefined && g >= 0) {
    const idGender: Gender = g % 2 === 1 ? 'F' : 'M';
    if (idGender !== context.gender) {
      problems.push({
        rule: 'personal-id.gender',
        message: `${id}: century/gender digit ${digit} (${GENDER_WORD[idGender]}) contradicts gender ${context.gender} (${GENDER_WORD[context.gender]})`,
      });
    }
  }
  return problems;
}

const TAX_CODE_WEIGHTS = [31, 29, 23, 19, 17, 13, 7, 5, 3] as const;

/**
 * The check digit of a tax code from its first nine digits: 10 − (weighted sum mod 11). Returns null
 * when that is 10 (or 11), i.e. no tax code can be issued with these nine digits.
 * Throws RangeError unless `first9` is exactly nine digits.
 */
export function taxCodeCheckDigit(first9: string): number | null {
  if (!/^\d{9}$/.test(first9)) throw new RangeError(`"${first9}" is not 9 digits`);
  let sum = 0;
  TAX_CODE_WEIGHTS.forEach((weight, i) => {
    sum += weight * Number(first9.charAt(i));
  });
  const check = 10 - (sum % 11);
  return check >= 10 ? null : check;
}

/**
 * Checks an enterprise / tax code: 10 digits (2-digit province, 7-digit sequence, check digit), or a
 * branch written `NNNNNNNNNN-NNN` whose 10-digit parent is valid and whose branch number is 001–999.
 * Returns every failed rule; an empty array means the code is valid.
 */
export function checkTaxCode(code: string): IdentifierProblem[] {
  const match = /^(\d{10})(?:-(\d{3}))?$/.exec(code);
  if (match?.[1] === undefined) {
    const message = /^\d{13}$/.test(code)
      ? `${code}: branch codes are written with a hyphen after the 10th digit (${code.slice(0, 10)}-${code.slice(10)})`
      : `${shown(code)}: not 10 digits, nor 10 digits, a hyphen and a 3-digit branch number`;
    return [{ rule: 'tax-code.format', message }];
  }
  const parent = match[1];
  const branch = match[2];
  const problems: IdentifierProblem[] = [];
  const first9 = parent.slice(0, 9);
  const actual = Number(parent.charAt(9));
  const expected = taxCodeCheckDigit(first9);
  if (expected === null) {
    problems.push({
      rule: 'tax-code.unissuable',
      message: `${code}: first nine digits ${first9} give check value 10, so no tax code can be issued with them`,
    });
  } else if (actual !== expected) {
    problems.push({
      rule: 'tax-code.check-digit',
      message: `${code}: check digit ${actual} should be ${expected}`,
    });
  }
  if (branch === '000') {
    problems.push({
      rule: 'tax-code.branch',
      message: `${code}: branch number 000 is not in 001–999`,
    });
  }
  return problems;
}

/**
 * Builds a valid 10-digit tax code from a 2-digit province code (a 1-digit code is zero-padded) and a
 * 7-digit sequence number 0–9,999,999. Returns null when the check digit would be 10/11 (that sequence
 * cannot be issued). Throws RangeError on a malformed province or an out-of-range sequence.
 */
export function formatTaxCode(province: string, sequence: number): string | null {
  if (!/^\d{1,2}$/.test(province)) throw new RangeError(`province "${province}" is not 2 digits`);
  if (!Number.isInteger(sequence) || sequence < 0 || sequence > 9_999_999) {
    throw new RangeError(`sequence ${sequence} is not an integer in 0–9999999`);
  }
  const first9 = `${province.padStart(2, '0')}${String(sequence).padStart(7, '0')}`;
  const check = taxCodeCheckDigit(first9);
  return check === null ? null : `${first9}${check}`;
}

const ADMINISTRATIVE_DIGITS = { province: 2, commune: 5 } as const;

/**
 * Checks a province (2-digit) or commune (5-digit) code: the right number of digits, and present in
 * `known` (the codes of the matching code list, supplied by the caller).
 */
export function checkAdministrativeCode(
  code: string,
  kind: 'province' | 'commune',
  known: ReadonlySet<string>,
): IdentifierProblem[] {
  const format = formatProblem(code, ADMINISTRATIVE_DIGITS[kind]);
  if (format !== null) {
    return [{ rule: `${kind}-code.format`, message: `${shown(code)}: ${format} (${kind} code)` }];
  }
  if (!known.has(code)) {
    return [{ rule: `${kind}-code.unknown`, message: `${code}: not a known ${kind} code` }];
  }
  return [];
}
