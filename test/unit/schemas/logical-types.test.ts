import { describe, expect, it } from 'vitest';
import { daysOfIsoDate, isoDateOfDays } from '../../../schemas/avro/logical-types.ts';

const DAY_MS = 86_400_000;
/** What the conversions must agree with: the Date-based round trip they replace. */
const viaDate = (days: number): string => new Date(days * DAY_MS).toISOString().slice(0, 10);

describe('Avro date logical type conversions', () => {
  it('agree with Date on every day from year 0000 to 9999', () => {
    const year0 = Date.parse('0000-01-01T00:00:00Z') / DAY_MS;
    const year9999 = Date.parse('9999-12-31T00:00:00Z') / DAY_MS;
    for (let days = year0; days <= year9999; days++) {
      const text = viaDate(days);
      if (isoDateOfDays(days) !== text) expect(isoDateOfDays(days)).toBe(text);
      if (daysOfIsoDate(text) !== days) expect(daysOfIsoDate(text)).toBe(days);
    }
  });

  it('refuse what is not a calendar date', () => {
    for (const value of [
      '2001-02-29',
      '2000-02-30',
      '1900-02-29',
      '2026-04-31',
      '2026-13-01',
      '2026-00-10',
      '2026-01-00',
      '2026-1-01',
      '20260101',
      ' 2026-01-01',
      '2026-01-01T00:00:00Z',
      '２０２６-01-01',
      20_260_101,
      null,
    ])
      expect(daysOfIsoDate(value)).toBeUndefined();
    expect(daysOfIsoDate('2000-02-29')).toBe(Date.parse('2000-02-29T00:00:00Z') / DAY_MS);
    expect(daysOfIsoDate('1969-12-31')).toBe(-1);
  });
});
