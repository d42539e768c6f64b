import avro from 'avsc';

/**
 * Avro logical types as lienthong's records carry them in memory:
 *   date (int, days since 1970-01-01)            ⇄ 'YYYY-MM-DD' string
 *   timestamp-millis (long, ms since the epoch)   ⇄ Date
 *   decimal (bytes, unscaled two's complement)     ⇄ decimal string
 * Readers of other logical types see the underlying Avro type.
 */
const DAY_MS = 86_400_000;
const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;

/** Days since 1970-01-01 of a proleptic Gregorian date (month 1–12); exact integer arithmetic. */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const dayOfYear = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;
const isLeap = (year: number): boolean => year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
const twoDigits = (n: number): string => (n < 10 ? `0${n}` : `${n}`);
const DIGIT_0 = 48;

/** Days since 1970-01-01 of a 'YYYY-MM-DD' calendar date, or undefined (wrong form, no such day). */
export function daysOfIsoDate(value: unknown): number | undefined {
  if (typeof value !== 'string' || value.length !== 10 || !ISO_DATE.test(value)) return undefined;
  const digit = (index: number): number => value.charCodeAt(index) - DIGIT_0;
  const year = digit(0) * 1000 + digit(1) * 100 + digit(2) * 10 + digit(3);
  const month = digit(5) * 10 + digit(6);
  const day = digit(8) * 10 + digit(9);
  if (month < 1 || month > 12 || day < 1) return undefined;
  const monthDays = month === 2 && isLeap(year) ? 29 : DAYS_IN_MONTH[month - 1]!;
  return day > monthDays ? undefined : daysFromCivil(year, month, day);
}

/** The 'YYYY-MM-DD' date `days` after 1970-01-01 (years outside 0000–9999 as Date#toISOString writes them). */
export function isoDateOfDays(days: number): string {
  // civil-from-days over 400-year eras of 146,097 days (H. Hinnant's algorithm), no Date allocated
  const shifted = days + 719_468;
  const era = Math.floor(shifted / 146_097);
  const dayOfEra = shifted - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra -
      Math.floor(dayOfEra / 1460) +
      Math.floor(dayOfEra / 36_524) -
      Math.floor(dayOfEra / 146_096)) /
      365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const shiftedMonth = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * shiftedMonth + 2) / 5) + 1;
  const month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9;
  const year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0);
  if (year < 0 || year > 9999) return new Date(days * DAY_MS).toISOString().slice(0, 10);
  return `${year < 1000 ? String(year).padStart(4, '0') : year}-${twoDigits(month)}-${twoDigits(day)}`;
}

export class DateType extends avro.types.LogicalType {
  protected override _fromValue(days: number): string {
    return isoDateOfDays(days);
  }
  protected override _toValue(value: unknown): number | undefined {
    return daysOfIsoDate(value);
  }
  protected override _resolve(type: avro.Type): unknown {
    if (avro.Type.isType(type, 'int', 'logical:date')) return (days: number) => this._fromValue(days);
    return undefined;
  }
}

export class TimestampMillisType extends avro.types.LogicalType {
  protected override _fromValue(ms: number): Date {
    return new Date(ms);
  }
  protected override _toValue(value: unknown): number | undefined {
    if (value instanceof Date && !Number.isNaN(value.getTime())) return value.getTime();
    return undefined;
  }
  protected override _resolve(type: avro.Type): unknown {
    if (avro.Type.isType(type, 'long', 'logical:timestamp-millis'))
      return (ms: number) => this._fromValue(ms);
    return undefined;
  }
}

/**
 * decimal (bytes: big-endian two's-complement unscaled integer) ⇄ a decimal string such as "1250000.50".
 * Precision and scale come from the schema; a value with more digits is invalid, never rounded.
 */
export class DecimalType extends avro.types.LogicalType {
  private readonly precision: number;
  private readonly scale: number;

  constructor(schema: avro.Schema, opts?: unknown) {
    super(schema, opts);
    const { precision, scale } = schema as { precision?: number; scale?: number };
    this.precision = precision ?? 38;
    this.scale = scale ?? 0;
  }

  protected override _fromValue(bytes: Buffer): string {
    let unscaled = 0n;
    for (const byte of bytes) unscaled = (unscaled << 8n) | BigInt(byte);
    if (bytes.length > 0 && (bytes[0]! & 0x80) !== 0) unscaled -= 1n << BigInt(bytes.length * 8);
    const negative = unscaled < 0n;
    const digits = (negative ? -unscaled : unscaled).toString().padStart(this.scale + 1, '0');
    const whole = digits.slice(0, digits.length - this.scale);
    const fraction = this.scale > 0 ? `.${digits.slice(-this.scale)}` : '';
    return `${negative ? '-' : ''}${whole}${fraction}`;
  }

  protected override _toValue(value: unknown): Buffer | undefined {
    const match = typeof value === 'string' ? /^(-?)(\d+)(?:\.(\d+))?$/.exec(value) : null;
    if (!match) return undefined;
    const [, sign, whole = '', fraction = ''] = match;
    if (fraction.length > this.scale) return undefined;
    const digits = `${whole}${fraction.padEnd(this.scale, '0')}`.replace(/^0+(?=\d)/, '');
    if (digits.length > this.precision) return undefined;
    let unscaled = BigInt(digits) * (sign === '-' ? -1n : 1n);
    const bytes: number[] = [];
    do {
      bytes.unshift(Number(unscaled & 0xffn));
      unscaled >>= 8n;
    } while (
      !(unscaled === 0n && (bytes[0]! & 0x80) === 0) &&
      !(unscaled === -1n && (bytes[0]! & 0x80) !== 0)
    );
    return Buffer.from(bytes);
  }

  protected override _resolve(type: avro.Type): unknown {
    if (avro.Type.isType(type, 'logical:decimal')) return (bytes: Buffer) => this._fromValue(bytes);
    return undefined;
  }
}

/**
 * Options for every avsc `forSchema` call in lienthong, and for the registry client's AVRO options.
 * A fresh object each call: avsc writes its name registry into the options it is given.
 */
export function avroTypeOptions(): { logicalTypes: Record<string, typeof avro.types.LogicalType> } {
  return { logicalTypes: { date: DateType, 'timestamp-millis': TimestampMillisType, decimal: DecimalType } };
}
