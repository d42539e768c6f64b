import type avro from 'avsc';

/*
 * Avro binary encoding, as far as its lengths and counts go (Avro 1.11 spec, "Binary Encoding"):
 *   int, long      zig-zag varint, at most 5 / 10 bytes
 *   float, double  4 / 8 bytes;  boolean 1 byte;  null nothing
 *   string, bytes  long length n ≥ 0, then n bytes;  fixed(n) n bytes
 *   enum           int index into the symbols;  union  long index into the branches, then that branch
 *   record         its fields in order
 *   array, map     blocks: long count c; c = 0 ends; c < 0 means |c| items preceded by a long byte size;
 *                  a map item is a string key then its value
 *
 * avsc decodes an array by allocating the declared count before it checks that the bytes are there, and keeps
 * reading past the end of the buffer, so a 20-byte record that declares 4 billion items takes the process down.
 * `checkAvroBounds` walks the bytes first, allocating nothing: every length and count must fit in the bytes that
 * remain (each item of a type that takes at least one byte), items that take no bytes at all (null, empty
 * records) are capped, nesting is capped, indexes are in range, and the body ends exactly at the end. Its work is
 * linear in the body's size, so decoding what passed is bounded too.
 */

/** Limits on one body beyond its length. */
export interface AvroBounds {
  /** Items of zero-byte types (null, empty records) a body may declare in all. @default 100000 */
  maxZeroSizeItems?: number;
  /** Nesting of records, arrays and maps. @default 64 */
  maxDepth?: number;
}

export const AVRO_BOUNDS_DEFAULTS: Required<AvroBounds> = { maxZeroSizeItems: 100_000, maxDepth: 64 };

/** Where and how a body broke the bounds: `path` names the field (`after.addresses[3].line`). */
export class AvroBoundsViolation extends Error {
  readonly path: string;
  readonly problem: string;

  constructor(path: string, problem: string) {
    super(`${path || 'the body'}: ${problem}`);
    this.path = path;
    this.problem = problem;
  }
}

interface Cursor {
  readonly buf: Buffer;
  pos: number;
  readonly end: number;
  zeroSizeItems: number;
  depth: number;
  readonly bounds: Required<AvroBounds>;
}

type Check = (cursor: Cursor) => void;

/** A problem found below a named step: rethrown with the step prepended to its path. */
function within(step: string, error: unknown): never {
  if (!(error instanceof AvroBoundsViolation)) throw error;
  const path =
    error.path === '' ? step : error.path.startsWith('[') ? step + error.path : `${step}.${error.path}`;
  throw new AvroBoundsViolation(path, error.problem);
}

function fail(problem: string): never {
  throw new AvroBoundsViolation('', problem);
}

/** A zig-zag varint of at most `maxBytes` bytes, as a double (exact up to 2^53; larger only has to compare). */
function readVarint(cursor: Cursor, maxBytes: number): number {
  let value = 0;
  let scale = 1;
  for (let count = 1; ; count++) {
    if (cursor.pos >= cursor.end) fail('the bytes end inside a number');
    const byte = cursor.buf[cursor.pos++]!;
    value += (byte & 0x7f) * scale;
    if ((byte & 0x80) === 0) break;
    if (count === maxBytes) fail(`a number longer than ${maxBytes} bytes`);
    scale *= 128;
  }
  return value % 2 === 0 ? value / 2 : -(value + 1) / 2;
}

const readLong = (cursor: Cursor): number => readVarint(cursor, 10);

function skip(cursor: Cursor, bytes: number, what: string): void {
  const remaining = cursor.end - cursor.pos;
  if (bytes > remaining) fail(`${what} of ${bytes} bytes, but only ${remaining} remain`);
  cursor.pos += bytes;
}

/** A string or bytes: a long length, then that many bytes. */
function lengthPrefixed(what: 'string' | 'bytes'): Check {
  return (cursor) => {
    const length = readLong(cursor);
    if (length < 0) fail(`a ${what} with a negative length`);
    skip(cursor, length, `a ${what}`);
  };
}
const checkMapKey = lengthPrefixed('string');

function enter(cursor: Cursor): void {
  if (++cursor.depth > cursor.bounds.maxDepth) fail(`nested deeper than ${cursor.bounds.maxDepth}`);
}

/** The fewest bytes a value of `type` can take; named types being sized count 0 (a recursive reference). */
function minSize(type: avro.Type, sizing: Set<avro.Type>): number {
  const name = type.typeName;
  if (name.startsWith('logical:'))
    return minSize((type as unknown as { underlyingType: avro.Type }).underlyingType, sizing);
  switch (name) {
    case 'null':
      return 0;
    case 'float':
      return 4;
    case 'double':
      return 8;
    case 'fixed':
      return (type as avro.types.FixedType).size;
    case 'record':
    case 'error': {
      if (sizing.has(type)) return 0;
      sizing.add(type);
      const size = (type as avro.types.RecordType).fields.reduce(
        (sum, field) => sum + minSize(field.type, sizing),
        0,
      );
      sizing.delete(type);
      return size;
    }
    default:
      return 1; // boolean, int, long, string, bytes, enum, array, map, union: at least one byte
  }
}

/** Counts the items of one array or map block and checks they can fit. */
function blockCount(cursor: Cursor, itemMinSize: number, what: 'an array' | 'a map'): number {
  let count = readLong(cursor);
  if (count < 0) {
    count = -count;
    const bytes = readLong(cursor);
    if (bytes < 0) fail(`${what} block declares a negative size`);
    if (bytes > cursor.end - cursor.pos)
      fail(`${what} block declares ${bytes} bytes, but only ${cursor.end - cursor.pos} remain`);
  }
  if (itemMinSize > 0) {
    const room = Math.floor((cursor.end - cursor.pos) / itemMinSize);
    if (count > room)
      fail(`${what} block declares ${count} items, but the bytes that remain hold at most ${room}`);
  } else {
    cursor.zeroSizeItems += count;
    if (cursor.zeroSizeItems > cursor.bounds.maxZeroSizeItems)
      fail(`more than ${cursor.bounds.maxZeroSizeItems} items that take no bytes`);
  }
  return count;
}

/** The blocks of an array or a map, each item checked by `item`; a problem names the item: `[3]`, `{3}`. */
function checkBlocks(cursor: Cursor, itemMin: number, what: 'an array' | 'a map', item: Check): void {
  enter(cursor);
  let index = 0;
  for (
    let count = blockCount(cursor, itemMin, what);
    count !== 0;
    count = blockCount(cursor, itemMin, what)
  ) {
    for (let n = 0; n < count; n++, index++) {
      try {
        item(cursor);
      } catch (error) {
        within(what === 'an array' ? `[${index}]` : `{${index}}`, error);
      }
    }
  }
  cursor.depth--;
}

function compile(type: avro.Type, compiled: Map<avro.Type, Check>): Check {
  const known = compiled.get(type);
  if (known) return known;
  const name = type.typeName;
  if (name.startsWith('logical:'))
    return compile((type as unknown as { underlyingType: avro.Type }).underlyingType, compiled);
  switch (name) {
    case 'null':
      return () => undefined;
    case 'boolean':
      return (cursor) => {
        if (cursor.pos >= cursor.end) fail('the bytes end before a boolean');
        if (cursor.buf[cursor.pos++]! > 1) fail('a boolean byte that is neither 0 nor 1');
      };
    case 'int':
      return (cursor) => void readVarint(cursor, 5);
    case 'long':
      return (cursor) => void readLong(cursor);
    case 'float':
      return (cursor) => skip(cursor, 4, 'a float');
    case 'double':
      return (cursor) => skip(cursor, 8, 'a double');
    case 'string':
    case 'bytes':
      return lengthPrefixed(name);
    case 'fixed': {
      const size = (type as avro.types.FixedType).size;
      return (cursor) => skip(cursor, size, 'a fixed');
    }
    case 'enum': {
      const symbols = (type as avro.types.EnumType).symbols.length;
      return (cursor) => {
        const index = readVarint(cursor, 5);
        if (index < 0 || index >= symbols) fail(`enum index ${index} is not one of the ${symbols} symbols`);
      };
    }
    case 'union:wrapped':
    case 'union:unwrapped': {
      const branches: Check[] = [];
      const check: Check = (cursor) => {
        const index = readLong(cursor);
        if (index < 0 || index >= branches.length)
          fail(`union index ${index} is not one of the ${branches.length} branches`);
        branches[index]!(cursor);
      };
      compiled.set(type, check);
      branches.push(
        ...(type as unknown as { types: avro.Type[] }).types.map((branch) => compile(branch, compiled)),
      );
      return check;
    }
    case 'array': {
      const items = (type as avro.types.ArrayType).itemsType;
      const itemMin = minSize(items, new Set());
      let item: Check = () => undefined;
      const check: Check = (cursor) => checkBlocks(cursor, itemMin, 'an array', item);
      compiled.set(type, check);
      item = compile(items, compiled);
      return check;
    }
    case 'map': {
      const values = (type as avro.types.MapType).valuesType;
      const itemMin = 1 + minSize(values, new Set());
      let value: Check = () => undefined;
      const entry: Check = (cursor) => {
        checkMapKey(cursor);
        value(cursor);
      };
      const check: Check = (cursor) => checkBlocks(cursor, itemMin, 'a map', entry);
      compiled.set(type, check);
      value = compile(values, compiled);
      return check;
    }
    case 'record':
    case 'error': {
      const fields: { name: string; check: Check }[] = [];
      const check: Check = (cursor) => {
        enter(cursor);
        for (const field of fields) {
          try {
            field.check(cursor);
          } catch (error) {
            within(field.name, error);
          }
        }
        cursor.depth--;
      };
      compiled.set(type, check);
      for (const field of (type as avro.types.RecordType).fields)
        fields.push({ name: field.name, check: compile(field.type, compiled) });
      return check;
    }
    default:
      throw new Error(`checkAvroBounds: Avro type ${name} is not supported`);
  }
}

const checkers = new WeakMap<avro.Type, Check>();

/**
 * Throws an AvroBoundsViolation unless `body` is a well-formed encoding of `type` within the bounds (see the
 * grammar above); allocates nothing that depends on what the body declares.
 */
export function checkAvroBounds(type: avro.Type, body: Buffer, bounds?: AvroBounds): void {
  let check = checkers.get(type);
  if (!check) {
    check = compile(type, new Map());
    checkers.set(type, check);
  }
  const cursor: Cursor = {
    buf: body,
    pos: 0,
    end: body.length,
    zeroSizeItems: 0,
    depth: 0,
    bounds: bounds === undefined ? AVRO_BOUNDS_DEFAULTS : { ...AVRO_BOUNDS_DEFAULTS, ...bounds },
  };
  check(cursor);
  if (cursor.pos !== cursor.end) fail(`${cursor.end - cursor.pos} bytes left over after the value`);
}
