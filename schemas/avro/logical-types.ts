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

export class DateType extends avro.types.LogicalType {
  protected override _fromValue(days: number): string {
    return new Date(days * DAY_MS).toISOString().slice(0, 10);
  }
  protected override _toValue(value: unknown): number | undefined {
    if (typeof value !== 'string' || !ISO_DATE.test(value)) return undefined;
    const ms = Date.parse(`${value}T00:00:00Z`);
    return Number.isNaN(ms) || new Date(ms).toISOString().slice(0, 10) !== value ? undefined : ms / DAY_MS;
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
