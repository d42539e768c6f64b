/**
 * Avro schema compatibility, decided the way the Confluent Schema Registry decides it.
 *
 * Confluent's `AvroSchema.isBackwardCompatible` delegates to Avro Java's `SchemaCompatibility`
 * (reader/writer resolution per the Avro specification's "Schema Resolution" section), and its
 * `CompatibilityChecker` applies that check against the latest live version (BACKWARD, FORWARD, FULL)
 * or against every live version, newest first, stopping at the first one that fails (the *_TRANSITIVE
 * levels). This module reproduces both layers over plain parsed JSON, without avsc:
 *
 * - primitives match themselves, plus the promotions int→long/float/double, long→float/double,
 *   float→double, string↔bytes; `logicalType` is ignored (the underlying type decides);
 * - records, enums and fixed types match when their unqualified names are equal or a reader alias
 *   (qualified in the reader's namespace) equals the writer's full name, exactly as Avro Java does;
 * - reader fields find their writer field by name or by a reader field alias; a reader field with no
 *   writer field needs a default; writer fields the reader lacks are skipped;
 * - enums: every writer symbol must exist in the reader unless the reader enum declares a default;
 * - fixed: sizes must be equal; arrays and maps recurse into items and values;
 * - a writer union needs every branch readable; a reader union needs some branch that reads the writer;
 * - named types are resolved by full name (namespace inheritance included) and recursive schemas are
 *   handled by memoising each reader/writer pair, treating a pair already in progress as compatible.
 *
 * Locations are the JSON pointers Avro Java reports (`/fields/3/type`, `/fields/0/type/symbols`, …).
 */

/** Every compatibility level the Confluent Schema Registry accepts, in its spelling. */
export const CompatibilityLevels = [
  'NONE',
  'BACKWARD',
  'BACKWARD_TRANSITIVE',
  'FORWARD',
  'FORWARD_TRANSITIVE',
  'FULL',
  'FULL_TRANSITIVE',
] as const;

/** One Confluent compatibility level: which directions are checked, against the latest or all versions. */
export type CompatibilityLevel = (typeof CompatibilityLevels)[number];

/** One reason a reader schema cannot decode data written with a writer schema. */
export interface Incompatibility {
  /**
   * Avro Java's `SchemaIncompatibilityType` name, as Confluent reports it: READER_FIELD_MISSING_DEFAULT_VALUE,
   * TYPE_MISMATCH, MISSING_ENUM_SYMBOLS, MISSING_UNION_BRANCH, NAME_MISMATCH or FIXED_SIZE_MISMATCH (plus
   * READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS, where Avro Java throws and Confluent reports a failure).
   */
  type: string;
  /** JSON pointer into the reader schema where the problem sits, such as `/fields/3/type`. */
  location: string;
  /** A plain-English sentence: what changed, and which readers it breaks. */
  message: string;
}

// ---------------------------------------------------------------------------------------------------------
// Schema model

const PrimitiveKinds = ['null', 'boolean', 'int', 'long', 'float', 'double', 'bytes', 'string'] as const;
type PrimitiveKind = (typeof PrimitiveKinds)[number];

interface PrimitiveNode {
  readonly kind: PrimitiveKind;
}

interface NamedParts {
  /** The unqualified name. */
  readonly name: string;
  /** The namespace, '' for the null namespace. */
  readonly namespace: string;
  readonly fullName: string;
}

interface NamedNodeBase extends NamedParts {
  /** Aliases as full names, qualified in this type's namespace. */
  readonly aliases: readonly string[];
}

interface FieldNode {
  readonly name: string;
  readonly aliases: readonly string[];
  readonly hasDefault: boolean;
  readonly type: SchemaNode;
}

interface RecordNode extends NamedNodeBase {
  readonly kind: 'record';
  /** Filled in after the record's name is registered, so fields may refer back to the record. */
  readonly fields: FieldNode[];
}

interface EnumNode extends NamedNodeBase {
  readonly kind: 'enum';
  readonly symbols: readonly string[];
  readonly defaultSymbol: string | undefined;
}

interface FixedNode extends NamedNodeBase {
  readonly kind: 'fixed';
  readonly size: number;
}

interface ArrayNode {
  readonly kind: 'array';
  readonly items: SchemaNode;
}

interface MapNode {
  readonly kind: 'map';
  readonly values: SchemaNode;
}

interface UnionNode {
  readonly kind: 'union';
  readonly branches: readonly SchemaNode[];
}

type NamedNode = RecordNode | EnumNode | FixedNode;
type SchemaNode = PrimitiveNode | NamedNode | ArrayNode | MapNode | UnionNode;

/** Shared primitive nodes: primitives carry nothing but their kind. */
const PrimitiveNodes: Readonly<Record<PrimitiveKind, PrimitiveNode>> = Object.freeze(
  Object.fromEntries(PrimitiveKinds.map((kind) => [kind, Object.freeze({ kind })])) as Record<
    PrimitiveKind,
    PrimitiveNode
  >,
);

// ---------------------------------------------------------------------------------------------------------
// Parsing parsed JSON into the model

/** Named types defined so far in one schema document, by full name. */
type NameTable = Map<string, NamedNode>;

function isPrimitiveKind(value: string): value is PrimitiveKind {
  return (PrimitiveKinds as readonly string[]).includes(value);
}

function isJsonObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function invalidSchema(reason: string): Error {
  return new Error(`Invalid Avro schema: ${reason}`);
}

function joinFullName(namespace: string, name: string): string {
  return namespace === '' ? name : `${namespace}.${name}`;
}

/**
 * Splits a declared name into name and namespace per the Avro spec: a dotted name is a full name and any
 * "namespace" attribute is ignored; otherwise an explicit "namespace" (even "") wins over the enclosing one.
 */
function qualifyName(
  declaredName: string,
  explicitNamespace: string | undefined,
  enclosing: string,
): NamedParts {
  const lastDot = declaredName.lastIndexOf('.');
  if (lastDot >= 0) {
    const namespace = declaredName.slice(0, lastDot);
    const name = declaredName.slice(lastDot + 1);
    return { name, namespace, fullName: declaredName };
  }
  const namespace = explicitNamespace ?? enclosing;
  return { name: declaredName, namespace, fullName: joinFullName(namespace, declaredName) };
}

function readString(json: Record<string, unknown>, key: string, what: string): string {
  const value = json[key];
  if (typeof value !== 'string') throw invalidSchema(`${what} needs a string "${key}"`);
  return value;
}

function readOptionalString(json: Record<string, unknown>, key: string, what: string): string | undefined {
  const value = json[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw invalidSchema(`${what}: "${key}" must be a string`);
  return value;
}

function readStringList(json: Record<string, unknown>, key: string, what: string): string[] {
  const value = json[key];
  if (value === undefined) return [];
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw invalidSchema(`${what}: "${key}" must be an array of strings`);
  }
  return value;
}

function readNamedParts(json: Record<string, unknown>, enclosing: string, kind: string): NamedParts {
  const declaredName = readString(json, 'name', `a ${kind}`);
  return qualifyName(
    declaredName,
    readOptionalString(json, 'namespace', `${kind} '${declaredName}'`),
    enclosing,
  );
}

function readAliases(json: Record<string, unknown>, parts: NamedParts): string[] {
  return readStringList(json, 'aliases', `'${parts.fullName}'`).map(
    (alias) => qualifyName(alias, undefined, parts.namespace).fullName,
  );
}

function registerName(names: NameTable, node: NamedNode): void {
  if (names.has(node.fullName)) throw invalidSchema(`the name '${node.fullName}' is defined twice`);
  names.set(node.fullName, node);
}

/** Resolves a type name: primitive, else full name, else qualified in the enclosing namespace, else null namespace. */
function resolveTypeName(typeName: string, enclosing: string, names: NameTable): SchemaNode {
  if (isPrimitiveKind(typeName)) return PrimitiveNodes[typeName];
  const candidates = typeName.includes('.') ? [typeName] : [joinFullName(enclosing, typeName), typeName];
  for (const candidate of candidates) {
    const found = names.get(candidate);
    if (found) return found;
  }
  throw invalidSchema(`unknown type '${typeName}'`);
}

function parseField(json: unknown, recordName: string, enclosing: string, names: NameTable): FieldNode {
  if (!isJsonObject(json)) throw invalidSchema(`record '${recordName}' has a field that is not an object`);
  const name = readString(json, 'name', `a field of record '${recordName}'`);
  if (!('type' in json)) throw invalidSchema(`field '${name}' of record '${recordName}' has no type`);
  return {
    name,
    aliases: readStringList(json, 'aliases', `field '${name}' of record '${recordName}'`),
    hasDefault: Object.hasOwn(json, 'default'),
    type: parseNode(json['type'], enclosing, names),
  };
}

function parseRecord(json: Record<string, unknown>, enclosing: string, names: NameTable): RecordNode {
  const parts = readNamedParts(json, enclosing, 'record');
  const node: RecordNode = { kind: 'record', ...parts, aliases: readAliases(json, parts), fields: [] };
  registerName(names, node);
  const fields = json['fields'];
  if (!Array.isArray(fields)) throw invalidSchema(`record '${parts.fullName}' needs a "fields" array`);
  for (const field of fields) node.fields.push(parseField(field, parts.fullName, parts.namespace, names));
  return node;
}

function parseEnum(json: Record<string, unknown>, enclosing: string, names: NameTable): EnumNode {
  const parts = readNamedParts(json, enclosing, 'enum');
  const node: EnumNode = {
    kind: 'enum',
    ...parts,
    aliases: readAliases(json, parts),
    symbols: readStringList(json, 'symbols', `enum '${parts.fullName}'`),
    defaultSymbol: readOptionalString(json, 'default', `enum '${parts.fullName}'`),
  };
  registerName(names, node);
  return node;
}

function parseFixed(json: Record<string, unknown>, enclosing: string, names: NameTable): FixedNode {
  const parts = readNamedParts(json, enclosing, 'fixed');
  const size = json['size'];
  if (typeof size !== 'number') throw invalidSchema(`fixed '${parts.fullName}' needs a numeric "size"`);
  const node: FixedNode = { kind: 'fixed', ...parts, aliases: readAliases(json, parts), size };
  registerName(names, node);
  return node;
}

function parseObject(json: Record<string, unknown>, enclosing: string, names: NameTable): SchemaNode {
  const type = json['type'];
  if (typeof type !== 'string') return parseNode(type, enclosing, names);
  switch (type) {
    case 'record':
    case 'error':
      return parseRecord(json, enclosing, names);
    case 'enum':
      return parseEnum(json, enclosing, names);
    case 'fixed':
      return parseFixed(json, enclosing, names);
    case 'array':
      return { kind: 'array', items: parseNode(json['items'], enclosing, names) };
    case 'map':
      return { kind: 'map', values: parseNode(json['values'], enclosing, names) };
    default:
      // A primitive, possibly with a logicalType (ignored), or a reference to a named type.
      return resolveTypeName(type, enclosing, names);
  }
}

function parseNode(json: unknown, enclosing: string, names: NameTable): SchemaNode {
  if (typeof json === 'string') return resolveTypeName(json, enclosing, names);
  if (Array.isArray(json))
    return { kind: 'union', branches: json.map((branch) => parseNode(branch, enclosing, names)) };
  if (isJsonObject(json)) return parseObject(json, enclosing, names);
  throw invalidSchema(`expected a type name, an object or an array, got ${JSON.stringify(json)}`);
}

/** Parses one schema document (parsed JSON) into a graph; recursive schemas become cyclic graphs. */
function parseSchema(json: unknown): SchemaNode {
  return parseNode(json, '', new Map());
}

// ---------------------------------------------------------------------------------------------------------
// Reader/writer resolution (Avro Java's ReaderWriterCompatibilityChecker)

const IncompatibilityTypes = {
  READER_FIELD_MISSING_DEFAULT_VALUE: 'READER_FIELD_MISSING_DEFAULT_VALUE',
  READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS: 'READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS',
  TYPE_MISMATCH: 'TYPE_MISMATCH',
  MISSING_ENUM_SYMBOLS: 'MISSING_ENUM_SYMBOLS',
  MISSING_UNION_BRANCH: 'MISSING_UNION_BRANCH',
  NAME_MISMATCH: 'NAME_MISMATCH',
  FIXED_SIZE_MISMATCH: 'FIXED_SIZE_MISMATCH',
} as const;

/** What went wrong, with the facts a message needs; `type` is the Confluent name. */
type FindingDetail =
  | { readonly type: 'READER_FIELD_MISSING_DEFAULT_VALUE'; readonly fieldName: string }
  | {
      readonly type: 'READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS';
      readonly fieldName: string;
      readonly writerFieldNames: readonly string[];
    }
  | { readonly type: 'TYPE_MISMATCH'; readonly readerType: string; readonly writerType: string }
  | { readonly type: 'MISSING_ENUM_SYMBOLS'; readonly enumName: string; readonly symbols: readonly string[] }
  | {
      readonly type: 'MISSING_UNION_BRANCH';
      readonly writerType: string;
      readonly writerBranch: number | undefined;
    }
  | {
      readonly type: 'NAME_MISMATCH';
      readonly kind: string;
      readonly readerName: string;
      readonly writerName: string;
    }
  | {
      readonly type: 'FIXED_SIZE_MISMATCH';
      readonly fixedName: string;
      readonly readerSize: number;
      readonly writerSize: number;
    };

/**
 * One problem, located relative to the reader/writer pair that found it: `location` holds JSON pointer
 * tokens and `fieldPath` the record field names crossed on the way. Parents prepend their own tokens, so a
 * memoised result can be reused anywhere the same pair turns up again.
 */
interface Finding {
  readonly location: readonly string[];
  readonly fieldPath: readonly string[];
  readonly detail: FindingDetail;
}

const InProgress = Symbol('in progress');

/** Results per reader node and writer node (by identity); `InProgress` marks a pair being computed. */
type PairMemo = Map<SchemaNode, Map<SchemaNode, readonly Finding[] | typeof InProgress>>;

/** Which writer type each reader primitive also accepts (the spec's promotions). */
const PromotableFrom: Readonly<Record<PrimitiveKind, readonly PrimitiveKind[]>> = {
  null: [],
  boolean: [],
  int: [],
  long: ['int'],
  float: ['int', 'long'],
  double: ['int', 'long', 'float'],
  bytes: ['string'],
  string: ['bytes'],
};

function finding(detail: FindingDetail, location: readonly string[] = []): Finding {
  return { location, fieldPath: [], detail };
}

function underToken(token: string, findings: readonly Finding[]): Finding[] {
  return findings.map((item) => ({ ...item, location: [token, ...item.location] }));
}

function underField(index: number, fieldName: string, findings: readonly Finding[]): Finding[] {
  return findings.map((item) => ({
    ...item,
    location: ['fields', String(index), ...item.location],
    fieldPath: [fieldName, ...item.fieldPath],
  }));
}

function isNamed(node: SchemaNode): node is NamedNode {
  return node.kind === 'record' || node.kind === 'enum' || node.kind === 'fixed';
}

function describeType(node: SchemaNode): string {
  return isNamed(node) ? `${node.kind} '${node.fullName}'` : node.kind;
}

/** Avro Java's `schemaNameEquals`: unqualified names are equal, or a reader alias is the writer's full name. */
function namesMatch(reader: NamedNode, writer: NamedNode): boolean {
  return reader.name === writer.name || reader.aliases.includes(writer.fullName);
}

function checkNames(reader: NamedNode, writer: NamedNode): Finding[] {
  if (namesMatch(reader, writer)) return [];
  return [
    finding(
      { type: 'NAME_MISMATCH', kind: reader.kind, readerName: reader.fullName, writerName: writer.fullName },
      ['name'],
    ),
  ];
}

function checkFixedSize(reader: FixedNode, writer: FixedNode): Finding[] {
  if (reader.size === writer.size) return [];
  return [
    finding(
      {
        type: 'FIXED_SIZE_MISMATCH',
        fixedName: reader.fullName,
        readerSize: reader.size,
        writerSize: writer.size,
      },
      ['size'],
    ),
  ];
}

function checkEnumSymbols(reader: EnumNode, writer: EnumNode): Finding[] {
  const missing = [...new Set(writer.symbols.filter((symbol) => !reader.symbols.includes(symbol)))].sort();
  if (missing.length === 0) return [];
  const readerHasDefault =
    reader.defaultSymbol !== undefined && reader.symbols.includes(reader.defaultSymbol);
  if (readerHasDefault) return [];
  return [
    finding({ type: 'MISSING_ENUM_SYMBOLS', enumName: reader.fullName, symbols: missing }, ['symbols']),
  ];
}

/** The writer fields a reader field reads from: by its name, then by each of its aliases. */
function writerFieldsFor(writer: RecordNode, readerField: FieldNode): FieldNode[] {
  const wanted = [readerField.name, ...readerField.aliases];
  const matches = wanted.flatMap((name) => writer.fields.filter((field) => field.name === name));
  return [...new Set(matches)];
}

function checkRecordFields(reader: RecordNode, writer: RecordNode, memo: PairMemo): Finding[] {
  return reader.fields.flatMap((readerField, index) => {
    const writerFields = writerFieldsFor(writer, readerField);
    const [writerField] = writerFields;
    if (writerFields.length > 1) {
      const detail: FindingDetail = {
        type: 'READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS',
        fieldName: readerField.name,
        writerFieldNames: writerFields.map((field) => field.name),
      };
      return underField(index, readerField.name, [finding(detail)]);
    }
    if (writerField === undefined) {
      if (readerField.hasDefault) return [];
      return underField(index, readerField.name, [
        finding({ type: 'READER_FIELD_MISSING_DEFAULT_VALUE', fieldName: readerField.name }),
      ]);
    }
    return underField(
      index,
      readerField.name,
      underToken('type', compare(readerField.type, writerField.type, memo)),
    );
  });
}

/** A reader union with no branch for `writer`; `writerBranch` is set when `writer` is a branch of a writer union. */
function missingUnionBranch(writer: SchemaNode, writerBranch?: number): Finding {
  const location = writerBranch === undefined ? [] : [String(writerBranch)];
  return finding({ type: 'MISSING_UNION_BRANCH', writerType: describeType(writer), writerBranch }, location);
}

function typeMismatch(reader: SchemaNode, writer: SchemaNode): Finding {
  return finding({
    type: 'TYPE_MISMATCH',
    readerType: describeType(reader),
    writerType: describeType(writer),
  });
}

function compareSameKind(reader: SchemaNode, writer: SchemaNode, memo: PairMemo): Finding[] {
  if (reader.kind === 'array' && writer.kind === 'array') {
    return underToken('items', compare(reader.items, writer.items, memo));
  }
  if (reader.kind === 'map' && writer.kind === 'map') {
    return underToken('values', compare(reader.values, writer.values, memo));
  }
  if (reader.kind === 'fixed' && writer.kind === 'fixed') {
    return [...checkNames(reader, writer), ...checkFixedSize(reader, writer)];
  }
  if (reader.kind === 'enum' && writer.kind === 'enum') {
    return [...checkNames(reader, writer), ...checkEnumSymbols(reader, writer)];
  }
  if (reader.kind === 'record' && writer.kind === 'record') {
    return [...checkNames(reader, writer), ...checkRecordFields(reader, writer, memo)];
  }
  if (reader.kind === 'union' && writer.kind === 'union') {
    // Every writer branch must be readable. Like Avro Java we report the branch; where the reader has a
    // branch of the same name (the usual evolving record inside ["null", Record]), we add the reasons
    // inside it, so that a message names the field that broke and not only the union around it.
    return writer.branches.flatMap((branch, index) => {
      if (compare(reader, branch, memo).length === 0) return [];
      const namesake = reader.branches.findIndex(
        (candidate) =>
          candidate.kind === branch.kind &&
          isNamed(candidate) &&
          isNamed(branch) &&
          namesMatch(candidate, branch),
      );
      const reasons =
        namesake < 0 ? [] : underToken(String(namesake), compare(reader.branches[namesake]!, branch, memo));
      return [missingUnionBranch(branch, index), ...reasons];
    });
  }
  return []; // identical primitives
}

function compareDifferentKinds(reader: SchemaNode, writer: SchemaNode, memo: PairMemo): Finding[] {
  if (writer.kind === 'union') {
    return writer.branches.flatMap((branch, index) =>
      underToken(String(index), compare(reader, branch, memo)),
    );
  }
  if (reader.kind === 'union') {
    const someBranchReads = reader.branches.some((branch) => compare(branch, writer, memo).length === 0);
    return someBranchReads ? [] : [missingUnionBranch(writer)];
  }
  if (
    isPrimitiveKind(reader.kind) &&
    isPrimitiveKind(writer.kind) &&
    PromotableFrom[reader.kind].includes(writer.kind)
  ) {
    return [];
  }
  return [typeMismatch(reader, writer)];
}

/** Memoised comparison of one reader/writer pair; a pair met again while in progress counts as compatible. */
function compare(reader: SchemaNode, writer: SchemaNode, memo: PairMemo): readonly Finding[] {
  let byWriter = memo.get(reader);
  if (byWriter === undefined) {
    byWriter = new Map();
    memo.set(reader, byWriter);
  }
  const known = byWriter.get(writer);
  if (known === InProgress) return [];
  if (known !== undefined) return known;
  byWriter.set(writer, InProgress);
  const findings =
    reader.kind === writer.kind
      ? compareSameKind(reader, writer, memo)
      : compareDifferentKinds(reader, writer, memo);
  byWriter.set(writer, findings);
  return findings;
}

// ---------------------------------------------------------------------------------------------------------
// Messages

/** How a message names the two schemas, e.g. "new schema" and "old schema". */
interface RoleLabels {
  readonly reader: string;
  readonly writer: string;
}

function escapePointerToken(token: string): string {
  return token.replaceAll('~', '~0').replaceAll('/', '~1');
}

function toPointer(tokens: readonly string[]): string {
  return `/${tokens.map(escapePointerToken).join('/')}`;
}

const TerminalTokens: ReadonlySet<string> = new Set(['name', 'size', 'symbols']);

/**
 * Describes where a location points in words, such as "the array items of field 'order.lines'" or
 * "union branch 1 of field 'payload'", walking the pointer tokens alongside the field names crossed.
 */
function describePlace(location: readonly string[], fieldPath: readonly string[]): string {
  let fieldsCrossed = 0;
  let qualifiers: string[] = [];
  for (let index = 0; index < location.length; index += 1) {
    const token = location[index] ?? '';
    if (TerminalTokens.has(token)) break;
    if (token === 'fields') {
      fieldsCrossed += 1;
      qualifiers = [];
      index += 1; // skip the field position
    } else if (token === 'items') {
      qualifiers.unshift('the array items of');
    } else if (token === 'values') {
      qualifiers.unshift('the map values of');
    } else if (/^\d+$/.test(token)) {
      qualifiers.unshift(`union branch ${token} of`);
    }
  }
  const base =
    fieldsCrossed > 0 ? `field '${fieldPath.slice(0, fieldsCrossed).join('.')}'` : 'the top-level schema';
  return [...qualifiers, base].join(' ');
}

function capitalise(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

function quoteAll(names: readonly string[]): string {
  return names.map((name) => `'${name}'`).join(', ');
}

function describeFinding(item: Finding, labels: RoleLabels): string {
  const { reader, writer } = labels;
  const detail = item.detail;
  const place = describePlace(item.location, item.fieldPath);
  switch (detail.type) {
    case 'READER_FIELD_MISSING_DEFAULT_VALUE':
      return `The ${reader} has ${place} without a default value, but the ${writer} does not have that field`;
    case 'READER_FIELD_MATCHES_MULTIPLE_WRITER_FIELDS':
      return `${capitalise(place)} in the ${reader} matches several fields of the ${writer} (${quoteAll(detail.writerFieldNames)}) through its name and aliases`;
    case 'TYPE_MISMATCH':
      return `The type of ${place} is ${detail.readerType} in the ${reader} but ${detail.writerType} in the ${writer}, and ${detail.writerType} cannot be promoted to ${detail.readerType}`;
    case 'MISSING_ENUM_SYMBOLS': {
      const symbols = `symbol${detail.symbols.length === 1 ? '' : 's'} ${quoteAll(detail.symbols)}`;
      return `Enum '${detail.enumName}' (${place}) in the ${reader} lacks the ${symbols} that the ${writer} can write, and has no default symbol to fall back on`;
    }
    case 'MISSING_UNION_BRANCH': {
      const unionPlace =
        detail.writerBranch === undefined ? place : describePlace(item.location.slice(0, -1), item.fieldPath);
      const branch =
        detail.writerBranch === undefined ? '' : ` (branch ${detail.writerBranch} of the ${writer}'s union)`;
      return `The union at ${unionPlace} in the ${reader} has no branch that can read the ${detail.writerType} values the ${writer} writes${branch}`;
    }
    case 'NAME_MISMATCH':
      return `The type of ${place} is the ${detail.kind} '${detail.readerName}' in the ${reader} but '${detail.writerName}' in the ${writer}, and neither its name nor an alias matches`;
    case 'FIXED_SIZE_MISMATCH':
      return `The type of ${place} is the fixed type '${detail.fixedName}' of ${detail.readerSize} bytes in the ${reader} but ${detail.writerSize} bytes in the ${writer}`;
  }
}

function toIncompatibility(item: Finding, labels: RoleLabels, prefix: string): Incompatibility {
  const consequence = `so consumers using the ${labels.reader} cannot read data written with the ${labels.writer}`;
  return {
    type: IncompatibilityTypes[item.detail.type],
    location: toPointer(item.location),
    message: `${prefix}${describeFinding(item, labels)}, ${consequence}.`,
  };
}

function readerWriterIncompatibilities(
  reader: unknown,
  writer: unknown,
  labels: RoleLabels,
  prefix: string,
): Incompatibility[] {
  const findings = compare(parseSchema(reader), parseSchema(writer), new Map());
  return findings.map((item) => toIncompatibility(item, labels, prefix));
}

// ---------------------------------------------------------------------------------------------------------
// Public API

/**
 * Can data written with `writer` be read with `reader`? Follows the Avro specification's schema resolution
 * rules as Avro Java's `SchemaCompatibility` implements them, which is what Confluent's registry runs.
 *
 * @param reader - the reader schema, as parsed JSON (object, primitive name string, or union array)
 * @param writer - the writer schema, as parsed JSON
 * @returns every incompatibility found, or `[]` when the reader can decode everything the writer writes
 * @throws Error when a schema is not structurally valid Avro (for example, it references an unknown type)
 */
export function checkReaderWriter(reader: unknown, writer: unknown): Incompatibility[] {
  return readerWriterIncompatibilities(
    reader,
    writer,
    { reader: 'reader schema', writer: 'writer schema' },
    '',
  );
}

const LevelRules: Readonly<
  Record<
    CompatibilityLevel,
    { readonly backward: boolean; readonly forward: boolean; readonly transitive: boolean }
  >
> = {
  NONE: { backward: false, forward: false, transitive: false },
  BACKWARD: { backward: true, forward: false, transitive: false },
  BACKWARD_TRANSITIVE: { backward: true, forward: false, transitive: true },
  FORWARD: { backward: false, forward: true, transitive: false },
  FORWARD_TRANSITIVE: { backward: false, forward: true, transitive: true },
  FULL: { backward: true, forward: true, transitive: false },
  FULL_TRANSITIVE: { backward: true, forward: true, transitive: true },
};

/** Names the existing version a message concerns, by its place among the live versions, when there are several. */
function versionPrefix(index: number, count: number): string {
  if (count === 1) return '';
  if (index === count - 1) return `Against the latest live version (${count} of ${count}): `;
  return `Against live version ${index + 1} of ${count} (oldest first): `;
}

const NewAndOld: RoleLabels = { reader: 'new schema', writer: 'old schema' };
const OldAndNew: RoleLabels = { reader: 'old schema', writer: 'new schema' };

function checkAgainstOne(
  candidate: unknown,
  previous: unknown,
  prefix: string,
  rules: { readonly backward: boolean; readonly forward: boolean },
): Incompatibility[] {
  // Confluent's mutual-read strategy (FULL) reports "old reads new" before "new reads old".
  const forward = rules.forward ? readerWriterIncompatibilities(previous, candidate, OldAndNew, prefix) : [];
  const backward = rules.backward
    ? readerWriterIncompatibilities(candidate, previous, NewAndOld, prefix)
    : [];
  return [...forward, ...backward];
}

/**
 * Decides whether `candidate` may be registered under a subject at the given compatibility level, with
 * Confluent's semantics: BACKWARD means the new schema reads data written with the old one, FORWARD means
 * the old schema reads data written with the new one, FULL means both. Non-transitive levels check the
 * latest live version only; transitive levels check every live version from newest to oldest and, like
 * Confluent's `validateAll`, report the incompatibilities of the first (newest) version that fails.
 * Messages name the version concerned by its position among `existing`.
 *
 * @param level - the subject's compatibility level
 * @param candidate - the schema being registered, as parsed JSON
 * @param existing - the subject's live versions as parsed JSON, oldest first
 * @returns every incompatibility found, or `[]` when the candidate is acceptable
 * @throws Error when a schema is not structurally valid Avro
 */
export function checkCompatibility(
  level: CompatibilityLevel,
  candidate: unknown,
  existing: unknown[],
): Incompatibility[] {
  const rules = LevelRules[level];
  if (!rules.backward && !rules.forward) return [];
  const indexes = existing.map((_, index) => index).reverse();
  const toCheck = rules.transitive ? indexes : indexes.slice(0, 1);
  for (const index of toCheck) {
    const problems = checkAgainstOne(
      candidate,
      existing[index],
      versionPrefix(index, existing.length),
      rules,
    );
    if (problems.length > 0) return problems;
  }
  return [];
}
