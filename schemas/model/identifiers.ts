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
