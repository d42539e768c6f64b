import avro from 'avsc';

/**
 * Avro logical types as lienthong's records carry them in memory:
 *   date (int, days since 1970-01-01)            ⇄ 'YYYY-MM-DD' string
 *   timestamp-millis (long, ms since the epoch)   ⇄ Date
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
 * Options for every avsc `forSchema` call in lienthong, and for the registry client's AVRO options.
 * A fresh object each call: avsc writes its name registry into the options it is given.
 */
export function avroTypeOptions(): { logicalTypes: Record<string, typeof avro.types.LogicalType> } {
  return { logicalTypes: { date: DateType, 'timestamp-millis': TimestampMillisType } };
}
