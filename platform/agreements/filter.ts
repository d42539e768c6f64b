/**
 * Row filters of sharing agreements: a small declarative language (never code, never SQL text), parsed
 * into a JSON-serialisable AST (stored as jsonb with the agreement), type-checked against the dataset in
 * the Shared Data Dictionary, and evaluated as a pure function of one record.
 *
 * Grammar (EBNF). Whitespace between tokens is free. Keywords are lower case, case-sensitive and
 * reserved (`and or not true false in between startsWith is null`; `startsWith` is camel case):
 *
 *   filter     = expr END ;
 *   expr       = or ;
 *   or         = and { "or" and } ;
 *   and        = unary { "and" unary } ;
 *   unary      = "not" unary | primary ;
 *   primary    = "(" expr ")" | comparison | "true" ;
 *   comparison = path op value
 *              | path "in" "[" value { "," value } "]"
 *              | path "between" value "and" value
 *              | path "startsWith" string
 *              | path "is" "null"
 *              | path "is" "not" "null" ;
 *   op         = "==" | "!=" | "<" | "<=" | ">" | ">=" ;
 *   path       = ident { "." ident } ;        (* a field, or a nested record's field; never through an array *)
 *   value      = string | number | "true" | "false" ;
 *   ident      = ( letter | "_" ) { letter | digit | "_" } ;      (* ASCII letters *)
 *   string     = '"' { any character except '"' and '\' | '\"' | '\\' } '"' ;
 *   number     = [ "-" ] digit { digit } [ "." digit { digit } ] [ ( "e" | "E" ) [ "+" | "-" ] digit { digit } ] ;
 *
 * So `a or b and c` is `a or (b and c)`, and `not a and b` is `(not a) and b`. Positions in problems are
 * 0-based offsets into the source text, counted in UTF-16 code units (JavaScript string indices).
 */
import { z } from 'zod';
import type { Dataset, Field } from '../../schemas/model/dataset.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';

type FilterValue = string | number | boolean;
type CompareOp = '==' | '!=' | '<' | '<=' | '>' | '>=';

/**
 * A parsed row filter. Plain data only (no positions, no functions), so it is stored as jsonb as it is;
 * `path` lists the field names from the top-level field down into nested records.
 */
export type FilterAst =
  | { kind: 'true' }
  | { kind: 'and'; operands: [FilterAst, FilterAst, ...FilterAst[]] }
  | { kind: 'or'; operands: [FilterAst, FilterAst, ...FilterAst[]] }
  | { kind: 'not'; operand: FilterAst }
  | { kind: 'compare'; path: string[]; op: CompareOp; value: FilterValue }
  | { kind: 'in'; path: string[]; values: FilterValue[] }
  | { kind: 'between'; path: string[]; low: FilterValue; high: FilterValue }
  | { kind: 'startsWith'; path: string[]; prefix: string }
  | { kind: 'isNull'; path: string[] }
  | { kind: 'isNotNull'; path: string[] };

/** One thing wrong with a filter and where: `position` is a 0-based offset into the source text. */
export interface FilterProblem {
  position: number;
  message: string;
}

const KEYWORDS = new Set(['and', 'or', 'not', 'true', 'false', 'in', 'between', 'startsWith', 'is', 'null']);
const COMPARE_OPS: ReadonlySet<string> = new Set<CompareOp>(['==', '!=', '<', '<=', '>', '>=']);
const ORDERED_TYPES: ReadonlySet<string> = new Set(['int', 'long', 'decimal', 'date', 'timestamp', 'string']);
/** The most values an `in` list may hold. */
const MAX_IN_VALUES = 1000;
/** The deepest nesting of parentheses and `not` the parser accepts (keeps every recursion bounded). */
const MAX_DEPTH = 64;
const INT32 = 2 ** 31;

// ---------------------------------------------------------------------------------------------------
// Positions: a side table keyed by AST node, so the AST itself stays plain data. All nodes of one parse
// share one `parse` token; an AST built by hand or read back from jsonb has no entries (see spansOf).

interface Spans {
  parse: object;
  start: number;
  /** Start of each path segment. */
  path?: number[];
  /** Start of the operator or keyword (`==`, `in`, `between`, `startsWith`, `is`). */
  op?: number;
  /** Start of each value: the compared value, each `in` value, `between` low and high, the prefix. */
  values?: number[];
}

const spansByNode = new WeakMap<object, Spans>();

// ---------------------------------------------------------------------------------------------------
// Lexer

type Token =
  | { kind: 'ident'; text: string; start: number }
  | { kind: 'string'; text: string; start: number; value: string }
  | { kind: 'number'; text: string; start: number; value: number }
  | { kind: 'punct'; text: string; start: number }
  | { kind: 'end'; text: ''; start: number };

class SyntaxProblem extends Error {
  readonly position: number;

  constructor(position: number, message: string) {
    super(message);
    this.position = position;
  }
}

const IDENT = /[A-Za-z_][A-Za-z0-9_]*/y;
const NUMBER = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const WHITESPACE = /\s/;

function lex(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (WHITESPACE.test(c)) {
      i += 1;
      continue;
    }
    IDENT.lastIndex = i;
    NUMBER.lastIndex = i;
    const ident = IDENT.exec(text);
    if (ident) {
      tokens.push({ kind: 'ident', text: ident[0], start: i });
      i += ident[0].length;
      continue;
    }
    const number = NUMBER.exec(text);
    if (number) {
      const value = Number(number[0]);
      if (!Number.isFinite(value)) throw new SyntaxProblem(i, `number ${number[0]} is out of range`);
      tokens.push({ kind: 'number', text: number[0], start: i, value });
      i += number[0].length;
      continue;
    }
    if (c === '"') {
      const start = i;
      let value = '';
      i += 1;
      for (;;) {
        if (i >= text.length) throw new SyntaxProblem(start, 'unterminated string: a closing " is missing');
        const d = text[i]!;
        if (d === '"') break;
        if (d === '\\') {
          const escaped = text[i + 1];
          if (escaped !== '"' && escaped !== '\\') {
            throw new SyntaxProblem(
              i,
              escaped === undefined
                ? 'unterminated string: a closing " is missing'
                : `unknown escape "\\${escaped}": inside a string only \\" and \\\\ are escapes`,
            );
          }
          value += escaped;
          i += 2;
        } else {
          value += d;
          i += 1;
        }
      }
      i += 1;
      tokens.push({ kind: 'string', text: text.slice(start, i), start, value });
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '==' || two === '!=' || two === '<=' || two === '>=') {
      tokens.push({ kind: 'punct', text: two, start: i });
      i += 2;
      continue;
    }
    if ('<>()[],.'.includes(c)) {
      tokens.push({ kind: 'punct', text: c, start: i });
      i += 1;
      continue;
    }
    throw new SyntaxProblem(i, unexpectedCharacter(two, c));
  }
  tokens.push({ kind: 'end', text: '', start: text.length });
  return tokens;
}

function unexpectedCharacter(two: string, c: string): string {
  if (two === '&&') return 'write "and" instead of "&&"';
  if (two === '||') return 'write "or" instead of "||"';
  if (c === '=') return '"=" is not an operator: write "==" to compare';
  if (c === '!') return 'write "not" to negate, or "!=" to compare';
  if (c === "'") return 'strings are written in double quotes: "…"';
  return `unexpected character "${c}"`;
}

// ---------------------------------------------------------------------------------------------------
// Parser

function describe(token: Token): string {
  if (token.kind === 'end') return 'the end of the filter';
  const text = token.text.length > 24 ? `${token.text.slice(0, 24)}…` : token.text;
  return token.kind === 'string' ? text : `"${text}"`;
}

/** ` (keywords are lower case: "and")` when an identifier is a keyword in the wrong case. */
function keywordHint(token: Token): string {
  if (token.kind !== 'ident' || KEYWORDS.has(token.text)) return '';
  const keyword = [...KEYWORDS].find((word) => word.toLowerCase() === token.text.toLowerCase());
  return keyword ? ` (keywords are case-sensitive: write "${keyword}")` : '';
}

class Parser {
  private index = 0;
  private depth = 0;
  private readonly parse = {};

  private readonly tokens: Token[];

  constructor(tokens: Token[]) {
    this.tokens = tokens;
  }

  filter(): FilterAst {
    const ast = this.expr();
    const token = this.peek();
    if (token.kind !== 'end') {
      throw new SyntaxProblem(
        token.start,
        `expected "and", "or" or the end of the filter, found ${describe(token)}${keywordHint(token)}`,
      );
    }
    return ast;
  }

  private peek(): Token {
    return this.tokens[this.index]!;
  }

  private next(): Token {
    const token = this.tokens[this.index]!;
    if (token.kind !== 'end') this.index += 1;
    return token;
  }

  private atKeyword(word: string): boolean {
    const token = this.peek();
    return token.kind === 'ident' && token.text === word;
  }

  private atPunct(text: string): boolean {
    const token = this.peek();
    return token.kind === 'punct' && token.text === text;
  }

  private node<T extends FilterAst>(ast: T, spans: Omit<Spans, 'parse'>): T {
    spansByNode.set(ast, { parse: this.parse, ...spans });
    return ast;
  }

  private enter(position: number): void {
    this.depth += 1;
    if (this.depth > MAX_DEPTH)
      throw new SyntaxProblem(position, `the filter nests deeper than ${MAX_DEPTH} levels`);
  }

  private expr(): FilterAst {
    return this.chain('or', () => this.chain('and', () => this.unary()));
  }

  private chain(kind: 'and' | 'or', operand: () => FilterAst): FilterAst {
    const start = this.peek().start;
    const first = operand();
    const operands: FilterAst[] = [first];
    while (this.atKeyword(kind)) {
      this.next();
      operands.push(operand());
    }
    const [, second, ...rest] = operands;
    return second ? this.node({ kind, operands: [first, second, ...rest] }, { start }) : first;
  }

  private unary(): FilterAst {
    if (!this.atKeyword('not')) return this.primary();
    const token = this.next();
    this.enter(token.start);
    const operand = this.unary();
    this.depth -= 1;
    return this.node({ kind: 'not', operand }, { start: token.start });
  }

  private primary(): FilterAst {
    const token = this.peek();
    if (token.kind === 'punct' && token.text === '(') {
      this.next();
      this.enter(token.start);
      const inner = this.expr();
      this.depth -= 1;
      const close = this.next();
      if (close.kind !== 'punct' || close.text !== ')') {
        throw new SyntaxProblem(
          close.start,
          `expected ")" to close the "(" at ${token.start}, found ${describe(close)}${keywordHint(close)}`,
        );
      }
      return inner;
    }
    if (this.atKeyword('true')) {
      this.next();
      return this.node({ kind: 'true' }, { start: token.start });
    }
    return this.comparison();
  }

  private fieldName(after: string): Token {
    const token = this.next();
    if (token.kind !== 'ident' || KEYWORDS.has(token.text) || keywordHint(token) !== '') {
      const hint = keywordHint(token) || (KEYWORDS.has(token.text) ? ` ("${token.text}" is a keyword)` : '');
      throw new SyntaxProblem(token.start, `expected a field name${after}, found ${describe(token)}${hint}`);
    }
    return token;
  }

  private comparison(): FilterAst {
    const first = this.fieldName('');
    const path = [first.text];
    const pathStarts = [first.start];
    while (this.atPunct('.')) {
      this.next();
      const segment = this.fieldName(' after "."');
      path.push(segment.text);
      pathStarts.push(segment.start);
    }
    const start = first.start;
    const shown = path.join('.');
    const token = this.next();
    const spans = { start, path: pathStarts, op: token.start };
    if (token.kind === 'punct' && COMPARE_OPS.has(token.text)) {
      const [value, at] = this.value(shown);
      return this.node(
        { kind: 'compare', path, op: token.text as CompareOp, value },
        { ...spans, values: [at] },
      );
    }
    if (token.kind === 'ident' && token.text === 'in') {
      const open = this.next();
      if (open.kind !== 'punct' || open.text !== '[')
        throw new SyntaxProblem(open.start, `expected "[" after "in", found ${describe(open)}`);
      if (this.atPunct(']'))
        throw new SyntaxProblem(this.peek().start, 'an "in" list needs at least one value');
      const values: FilterValue[] = [];
      const starts: number[] = [];
      for (;;) {
        const [value, at] = this.value(shown);
        values.push(value);
        starts.push(at);
        const separator = this.next();
        if (separator.kind === 'punct' && separator.text === ']') break;
        if (separator.kind !== 'punct' || separator.text !== ',') {
          throw new SyntaxProblem(
            separator.start,
            `expected "," or "]" in the "in" list, found ${describe(separator)}`,
          );
        }
      }
      return this.node({ kind: 'in', path, values }, { ...spans, values: starts });
    }
    if (token.kind === 'ident' && token.text === 'between') {
      const [low, lowAt] = this.value(shown);
      const and = this.next();
      if (and.kind !== 'ident' || and.text !== 'and') {
        throw new SyntaxProblem(
          and.start,
          `expected "and" between the two bounds of "between", found ${describe(and)}${keywordHint(and)}`,
        );
      }
      const [high, highAt] = this.value(shown);
      return this.node({ kind: 'between', path, low, high }, { ...spans, values: [lowAt, highAt] });
    }
    if (token.kind === 'ident' && token.text === 'startsWith') {
      const prefix = this.next();
      if (prefix.kind !== 'string') {
        throw new SyntaxProblem(
          prefix.start,
          `expected a string in double quotes after "startsWith", found ${describe(prefix)}`,
        );
      }
      return this.node(
        { kind: 'startsWith', path, prefix: prefix.value },
        { ...spans, values: [prefix.start] },
      );
    }
    if (token.kind === 'ident' && token.text === 'is') {
      if (this.atKeyword('null')) {
        this.next();
        return this.node({ kind: 'isNull', path }, spans);
      }
      const not = this.next();
      const nul = not.kind === 'ident' && not.text === 'not' ? this.next() : not;
      if (not !== nul && nul.kind === 'ident' && nul.text === 'null')
        return this.node({ kind: 'isNotNull', path }, spans);
      throw new SyntaxProblem(
        nul.start,
        `expected "null" or "not null" after "is", found ${describe(nul)}${keywordHint(nul)}`,
      );
    }
    throw new SyntaxProblem(
      token.start,
      `expected an operator after "${shown}" (==, !=, <, <=, >, >=, in, between, startsWith or is), ` +
        `found ${describe(token)}${keywordHint(token)}`,
    );
  }

  private value(shown: string): [FilterValue, number] {
    const token = this.next();
    if (token.kind === 'string' || token.kind === 'number') return [token.value, token.start];
    if (token.kind === 'ident' && (token.text === 'true' || token.text === 'false'))
      return [token.text === 'true', token.start];
    if (token.kind === 'ident' && token.text === 'null') {
      throw new SyntaxProblem(
        token.start,
        `null is not a value: write "${shown} is null" to test for a missing value`,
      );
    }
    throw new SyntaxProblem(
      token.start,
      `expected a value (a string in double quotes, a number, true or false), found ${describe(token)}${keywordHint(token)}`,
    );
  }
}

/** Parses filter text; on failure, the first problem with its position. */
export function parseFilter(
  text: string,
): { ok: true; ast: FilterAst } | { ok: false; problems: FilterProblem[] } {
  try {
    return { ok: true, ast: new Parser(lex(text)).filter() };
  } catch (error) {
    if (error instanceof SyntaxProblem)
      return { ok: false, problems: [{ position: error.position, message: error.message }] };
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------
// Canonical text

function formatValue(value: FilterValue): string {
  if (typeof value === 'string') return `"${value.replace(/[\\"]/g, '\\$&')}"`;
  if (typeof value === 'boolean') return String(value);
  if (!Number.isFinite(value)) throw new TypeError(`a filter value must be a finite number, not ${value}`);
  return Object.is(value, -0) ? '-0' : String(value);
}

/** Node positions without the parse they come from: what the formatter records. */
type Offsets = Omit<Spans, 'parse'>;

/** Writes the canonical text of `ast`, recording in `offsets` (when given) where each node's tokens went. */
function render(ast: FilterAst, offsets?: Map<FilterAst, Offsets>): string {
  let out = '';
  const path = (segments: readonly string[]): number[] =>
    segments.map((segment, index) => {
      if (index > 0) out += '.';
      const at = out.length;
      out += segment;
      return at;
    });
  const value = (literal: FilterValue): number => {
    const at = out.length;
    out += formatValue(literal);
    return at;
  };
  const visit = (node: FilterAst): void => {
    const start = out.length;
    switch (node.kind) {
      case 'true':
        out += 'true';
        offsets?.set(node, { start });
        return;
      case 'and':
      case 'or':
        offsets?.set(node, { start });
        node.operands.forEach((operand, index) => {
          if (index > 0) out += ` ${node.kind} `;
          const nested = operand.kind === 'and' || operand.kind === 'or';
          if (nested) out += '(';
          visit(operand);
          if (nested) out += ')';
        });
        return;
      case 'not':
        offsets?.set(node, { start });
        out += 'not (';
        visit(node.operand);
        out += ')';
        return;
    }
    const segments = path(node.path);
    out += ' ';
    const op = out.length;
    const values: number[] = [];
    switch (node.kind) {
      case 'compare':
        out += `${node.op} `;
        values.push(value(node.value));
        break;
      case 'in':
        out += 'in [';
        node.values.forEach((literal, index) => {
          if (index > 0) out += ', ';
          values.push(value(literal));
        });
        out += ']';
        break;
      case 'between':
        out += 'between ';
        values.push(value(node.low));
        out += ' and ';
        values.push(value(node.high));
        break;
      case 'startsWith':
        out += 'startsWith ';
        values.push(value(node.prefix));
        break;
      case 'isNull':
        out += 'is null';
        break;
      case 'isNotNull':
        out += 'is not null';
        break;
    }
    offsets?.set(node, { start, path: segments, op, values });
  };
  visit(ast);
  return out;
}

/**
 * The canonical text of a filter: one space around operators and keywords, `not (…)`, parentheses around
 * a nested `and`/`or` (so `parseFilter(formatFilter(ast))` rebuilds exactly `ast`). Carries no positions.
 */
export function formatFilter(ast: FilterAst): string {
  return render(ast);
}

// ---------------------------------------------------------------------------------------------------
// Fields read

/**
 * The top-level field names a filter reads, sorted and without repeats: the coordinator needs them even
 * when the agreement does not share them.
 */
export function filterFields(ast: FilterAst): string[] {
  const names = new Set<string>();
  const visit = (node: FilterAst): void => {
    if (node.kind === 'and' || node.kind === 'or') node.operands.forEach(visit);
    else if (node.kind === 'not') visit(node.operand);
    else if (node.kind !== 'true' && node.path[0] !== undefined) names.add(node.path[0]);
  };
  visit(ast);
  return [...names].sort();
}

/**
 * The fields a filter tests that are not among `shared` (minimization): a filter on an unshared field leaks
 * it, since every row received says that the field matched.
 */
export function unsharedFilterFields(ast: FilterAst, shared: readonly string[]): string[] {
  return filterFields(ast).filter((name) => !shared.includes(name));
}

// ---------------------------------------------------------------------------------------------------
// Values: dates, timestamps and exact decimals

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const DECIMAL_TEXT = /^-?\d+(\.\d+)?$/;
const ISO_TIMESTAMP = z.iso.datetime({ offset: true });

function isRealDate(value: string): boolean {
  if (!ISO_DATE.test(value)) return false;
  const ms = Date.parse(`${value}T00:00:00Z`);
  return !Number.isNaN(ms) && new Date(ms).toISOString().slice(0, 10) === value;
}

/** Milliseconds of an ISO 8601 timestamp with a time zone, or undefined (V8 alone accepts 30 February). */
function timestampMillis(value: string): number | undefined {
  if (!ISO_TIMESTAMP.safeParse(value).success || !isRealDate(value.slice(0, 10))) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** A decimal as sign, significant digits and a power of ten: value = ± digits × 10^exponent. */
interface Decimal {
  negative: boolean;
  digits: string;
  exponent: number;
}

const DECIMAL_PARTS = /^(-?)(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/;

/** A decimal string ("1250000.50") or a finite number, read exactly (a number by its shortest text). */
function toDecimal(value: unknown): Decimal | undefined {
  let text: string;
  if (typeof value === 'number' && Number.isFinite(value)) text = String(value);
  else if (typeof value === 'string' && DECIMAL_TEXT.test(value)) text = value;
  else return undefined;
  const match = DECIMAL_PARTS.exec(text);
  if (!match) return undefined;
  const [, sign = '', whole = '', fraction = '', exponent = '0'] = match;
  let digits = `${whole}${fraction}`.replace(/^0+/, '');
  let power = Number(exponent) - fraction.length;
  const trimmed = digits.replace(/0+$/, '');
  power += digits.length - trimmed.length;
  digits = trimmed;
  return { negative: sign === '-' && digits !== '', digits, exponent: power };
}

function compareDecimals(a: Decimal, b: Decimal): number {
  if (a.negative !== b.negative) return a.negative ? -1 : 1;
  const magnitude = (): number => {
    if (a.digits === '' || b.digits === '') return a.digits === b.digits ? 0 : a.digits === '' ? -1 : 1;
    const aTop = a.digits.length + a.exponent;
    const bTop = b.digits.length + b.exponent;
    if (aTop !== bTop) return aTop < bTop ? -1 : 1;
    const width = Math.max(a.digits.length, b.digits.length);
    const aDigits = a.digits.padEnd(width, '0');
    const bDigits = b.digits.padEnd(width, '0');
    return aDigits === bDigits ? 0 : aDigits < bDigits ? -1 : 1;
  };
  return a.negative ? -magnitude() : magnitude();
}

function sign(difference: number): number {
  return difference < 0 ? -1 : difference > 0 ? 1 : 0;
}

/** How values of a path compare when the dataset says: decimals numerically, timestamps by time. */
type CompareMode = 'decimal' | 'timestamp' | 'by-value';

/**
 * Compares a record's value with a filter value; undefined when they cannot be compared (then no
 * comparison matches). Strings compare by UTF-16 code units, so ISO dates compare in date order.
 */
function compareValues(value: unknown, literal: FilterValue, mode: CompareMode): number | undefined {
  if (mode === 'decimal') {
    const a = toDecimal(value);
    const b = toDecimal(literal);
    return a && b ? compareDecimals(a, b) : undefined;
  }
  if (mode === 'timestamp' || value instanceof Date) {
    const a =
      value instanceof Date
        ? value.getTime()
        : typeof value === 'string'
          ? timestampMillis(value)
          : undefined;
    const b = typeof literal === 'string' ? timestampMillis(literal) : undefined;
    return a === undefined || Number.isNaN(a) || b === undefined ? undefined : sign(a - b);
  }
  if (typeof value === 'number' && typeof literal === 'number') return sign(value - literal);
  if (typeof value === 'string' && typeof literal === 'string')
    return value < literal ? -1 : value > literal ? 1 : 0;
  if (typeof value === 'string' && typeof literal === 'number') {
    // a decimal held as a string, compared with a number literal
    const a = toDecimal(value);
    const b = toDecimal(literal);
    return a && b ? compareDecimals(a, b) : undefined;
  }
  if (typeof value === 'boolean' && typeof literal === 'boolean')
    return value === literal ? 0 : value ? 1 : -1;
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// Evaluation

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

function getter(path: readonly string[]): (record: Record<string, unknown>) => unknown {
  return (record) => {
    let current: unknown = record;
    for (const segment of path) {
      if (!isPlainObject(current) || !Object.hasOwn(current, segment)) return undefined;
      current = current[segment];
    }
    return current;
  };
}

/** The field a path names, walking nested records; undefined if there is none (or it crosses an array). */
function fieldAt(fields: readonly Field[], path: readonly string[]): Field | undefined {
  let current = fields;
  let found: Field | undefined;
  for (const segment of path) {
    found = current.find((field) => field.name === segment);
    if (!found) return undefined;
    current = found.type === 'record' ? found.fields : [];
  }
  return found;
}

/**
 * Compiles a filter into a pure predicate over one record. A null or absent field matches no comparison
 * (so `x != 1` is false when x is null); only `is null` matches it. Dates compare as strings (ISO order),
 * timestamps by time, decimals numerically and exactly, strings by UTF-16 code units.
 *
 * Without `dataset`, how two values compare follows the values: a Date compares by time with an ISO
 * string, a decimal string numerically with a number literal. Pass the dataset (the agreement's) so that
 * a decimal field also compares numerically with a numeric string literal ("100" equals "100.0") and a
 * timestamp field held as an ISO string compares by time. The AST is assumed to have passed checkFilter.
 */
export function compileFilter(
  ast: FilterAst,
  dataset?: Dataset,
): (record: Record<string, unknown>) => boolean {
  const modeOf = (path: readonly string[]): CompareMode => {
    const type = dataset ? fieldAt(dataset.fields, path)?.type : undefined;
    return type === 'decimal' ? 'decimal' : type === 'timestamp' ? 'timestamp' : 'by-value';
  };
  const build = (node: FilterAst): ((record: Record<string, unknown>) => boolean) => {
    switch (node.kind) {
      case 'true':
        return () => true;
      case 'and': {
        const operands = node.operands.map(build);
        return (record) => operands.every((operand) => operand(record));
      }
      case 'or': {
        const operands = node.operands.map(build);
        return (record) => operands.some((operand) => operand(record));
      }
      case 'not': {
        const operand = build(node.operand);
        return (record) => !operand(record);
      }
      case 'isNull': {
        const get = getter(node.path);
        return (record) => get(record) == null;
      }
      case 'isNotNull': {
        const get = getter(node.path);
        return (record) => get(record) != null;
      }
      case 'startsWith': {
        const get = getter(node.path);
        const prefix = node.prefix;
        return (record) => {
          const value = get(record);
          return typeof value === 'string' && value.startsWith(prefix);
        };
      }
      case 'compare': {
        const get = getter(node.path);
        const mode = modeOf(node.path);
        const { op, value: literal } = node;
        return (record) => {
          const value = get(record);
          if (value == null) return false;
          const order = compareValues(value, literal, mode);
          if (order === undefined) return false;
          switch (op) {
            case '==':
              return order === 0;
            case '!=':
              return order !== 0;
            case '<':
              return order < 0;
            case '<=':
              return order <= 0;
            case '>':
              return order > 0;
            case '>=':
              return order >= 0;
          }
        };
      }
      case 'in': {
        const get = getter(node.path);
        const mode = modeOf(node.path);
        const values = node.values;
        return (record) => {
          const value = get(record);
          return value != null && values.some((literal) => compareValues(value, literal, mode) === 0);
        };
      }
      case 'between': {
        const get = getter(node.path);
        const mode = modeOf(node.path);
        const { low, high } = node;
        return (record) => {
          const value = get(record);
          if (value == null) return false;
          const fromLow = compareValues(value, low, mode);
          const toHigh = compareValues(value, high, mode);
          return fromLow !== undefined && toHigh !== undefined && fromLow >= 0 && toHigh <= 0;
        };
      }
    }
  };
  return build(ast);
}

// ---------------------------------------------------------------------------------------------------
// Type check

function article(type: string): string {
  return /^[aeiou]/.test(type) ? `an ${type}` : `a ${type}`;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i += 1) {
    const row = [i];
    for (let j = 1; j <= b.length; j += 1) {
      const substitution = previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1);
      row.push(Math.min(previous[j]! + 1, row[j - 1]! + 1, substitution));
    }
    previous = row;
  }
  return previous[b.length]!;
}

/** ` (did you mean "province_code"?)` for the closest known name, if one is close enough. */
function suggestion(name: string, candidates: readonly string[]): string {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(name.length / 3))
    ? ` (did you mean "${best.candidate}"?)`
    : '';
}

/**
 * Where each node's tokens are: from the side table when the whole AST comes from one parseFilter call,
 * else (an AST read back from jsonb, or assembled by hand) where formatFilter(ast) writes them, so
 * positions then point into the canonical text.
 */
function spansOf(ast: FilterAst): (node: FilterAst) => Offsets | undefined {
  const nodes: FilterAst[] = [];
  const collect = (node: FilterAst): void => {
    nodes.push(node);
    if ((node.kind === 'and' || node.kind === 'or') && Array.isArray(node.operands))
      node.operands.forEach(collect);
    else if (node.kind === 'not') collect(node.operand);
  };
  collect(ast);
  const parse = spansByNode.get(ast)?.parse;
  if (parse && nodes.every((node) => spansByNode.get(node)?.parse === parse))
    return (node) => spansByNode.get(node);
  const canonical = new Map<FilterAst, Offsets>();
  try {
    render(ast, canonical);
  } catch {
    // a malformed AST (a non-finite number, a missing list): the positions left unknown fall back to 0
  }
  return (node) => canonical.get(node);
}

interface CheckContext {
  dataset: Dataset;
  dictionary: Dictionary;
  problems: FilterProblem[];
  spans: (node: FilterAst) => Offsets | undefined;
}

/** The field a path names, or a problem at the offending segment. */
function resolvePath(
  path: readonly string[],
  positions: readonly number[],
  context: CheckContext,
): Field | undefined {
  const { dataset } = context;
  let fields: readonly Field[] = dataset.fields;
  let where = dataset.id;
  for (const [index, segment] of path.entries()) {
    const at = positions[index] ?? positions[0] ?? 0;
    const field = fields.find((candidate) => candidate.name === segment);
    const shown = path.slice(0, index + 1).join('.');
    if (!field) {
      const names = fields.map((candidate) => candidate.name);
      context.problems.push({
        position: at,
        message: `unknown field "${segment}" in ${where}${suggestion(segment, names)}`,
      });
      return undefined;
    }
    if (field.type === 'array') {
      context.problems.push({
        position: at,
        message: `"${shown}" is an array in ${dataset.id}: a filter cannot look inside an array`,
      });
      return undefined;
    }
    const next = path[index + 1];
    if (next === undefined) return field;
    if (field.type !== 'record') {
      context.problems.push({
        position: positions[index + 1] ?? at,
        message: `"${shown}" is ${article(field.type)}, not a record: it has no field "${next}"`,
      });
      return undefined;
    }
    fields = field.fields;
    where = `record "${shown}" of ${dataset.id}`;
  }
  context.problems.push({ position: positions[0] ?? 0, message: 'expected a field name' });
  return undefined;
}

/** What is wrong with `value` for `field` (named `shown`), or undefined when it fits. */
function valueProblem(
  field: Field,
  shown: string,
  value: unknown,
  dictionary: Dictionary,
): string | undefined {
  const found =
    typeof value === 'string' || typeof value === 'boolean' || Number.isFinite(value)
      ? formatValue(value as FilterValue)
      : String(value);
  const expected = (what: string): string =>
    `${shown} is ${article(field.type)}: expected ${what}, found ${found}`;
  switch (field.type) {
    case 'string':
      return typeof value === 'string' ? undefined : expected('a string in double quotes');
    case 'code': {
      const list = dictionary.codeLists.get(field.codeList);
      if (typeof value !== 'string')
        return expected(
          `a code from the ${field.codeList} code list in double quotes${list?.codes[0] ? `, such as "${list.codes[0].code}"` : ''}`,
        );
      if (!list) return `${shown} names the code list "${field.codeList}", which is not in the dictionary`;
      return list.codes.some((code) => code.code === value)
        ? undefined
        : `"${value}" is not in the ${field.codeList} code list`;
    }
    case 'int':
      return typeof value === 'number' && Number.isInteger(value) && value >= -INT32 && value < INT32
        ? undefined
        : expected(`a whole number from ${-INT32} to ${INT32 - 1}`);
    case 'long':
      return typeof value === 'number' && Number.isSafeInteger(value)
        ? undefined
        : expected(`a whole number from ${Number.MIN_SAFE_INTEGER} to ${Number.MAX_SAFE_INTEGER}`);
    case 'decimal':
      return (typeof value === 'number' && Number.isFinite(value)) ||
        (typeof value === 'string' && DECIMAL_TEXT.test(value))
        ? undefined
        : expected('a number, or a numeric string such as "1250000.5"');
    case 'boolean':
      return typeof value === 'boolean' ? undefined : expected('true or false');
    case 'date':
      if (typeof value !== 'string') return expected('a date in double quotes, written "YYYY-MM-DD"');
      return isRealDate(value)
        ? undefined
        : `${found} is not a real date written "YYYY-MM-DD" (${shown} is a date)`;
    case 'timestamp':
      return typeof value === 'string' && timestampMillis(value) !== undefined
        ? undefined
        : expected(
            'an ISO 8601 timestamp with a time zone in double quotes, such as "2025-07-01T00:00:00+07:00"',
          );
    case 'record':
    case 'array':
      return `${shown} is ${article(field.type)}: it has no single value to compare`;
  }
}

function checkNode(node: FilterAst, context: CheckContext): void {
  const spans = context.spans(node);
  const start = spans?.start ?? 0;
  const problem = (position: number | undefined, message: string): void => {
    context.problems.push({ position: position ?? start, message });
  };
  switch (node.kind) {
    case 'true':
      return;
    case 'and':
    case 'or':
      if (!Array.isArray(node.operands) || node.operands.length < 2) {
        problem(start, `an "${node.kind}" needs at least two operands`);
        return;
      }
      for (const operand of node.operands) checkNode(operand, context);
      return;
    case 'not':
      checkNode(node.operand, context);
      return;
    case 'compare':
    case 'in':
    case 'between':
    case 'startsWith':
    case 'isNull':
    case 'isNotNull':
      break;
    default:
      problem(start, `unknown filter node kind "${String((node as { kind: unknown }).kind)}"`);
      return;
  }
  if (!Array.isArray(node.path) || node.path.length === 0) {
    problem(start, 'expected a field name');
    return;
  }
  const field = resolvePath(node.path, spans?.path ?? [start], context);
  if (!field) return;
  if (node.kind === 'isNull' || node.kind === 'isNotNull') return;
  const shown = node.path.join('.');
  const op = spans?.op ?? start;
  const valueAt = (index: number): number => spans?.values?.[index] ?? op;
  if (field.type === 'record') {
    const first = field.fields[0]?.name ?? 'field';
    problem(
      op,
      `${shown} is a record: only "is null" and "is not null" apply to it; compare one of its fields, such as ${shown}.${first}`,
    );
    return;
  }
  const checkValue = (value: unknown, index: number): boolean => {
    const message = valueProblem(field, shown, value, context.dictionary);
    if (message) problem(valueAt(index), message);
    return message === undefined;
  };
  const ordered = (operator: string): void => {
    if (!ORDERED_TYPES.has(field.type)) {
      problem(
        op,
        `"${operator}" does not apply to ${shown}, ${article(field.type)}: ordering needs an int, long, decimal, date, timestamp or string field`,
      );
    }
  };
  switch (node.kind) {
    case 'compare':
      if (node.op !== '==' && node.op !== '!=') ordered(node.op);
      checkValue(node.value, 0);
      return;
    case 'in':
      if (!Array.isArray(node.values) || node.values.length === 0) {
        problem(op, 'an "in" list needs at least one value');
        return;
      }
      if (node.values.length > MAX_IN_VALUES) {
        problem(
          valueAt(MAX_IN_VALUES),
          `an "in" list holds at most ${MAX_IN_VALUES} values; this one has ${node.values.length}`,
        );
      }
      node.values.forEach((value, index) => checkValue(value, index));
      return;
    case 'between': {
      ordered('between');
      const lowOk = checkValue(node.low, 0);
      const highOk = checkValue(node.high, 1);
      if (lowOk && highOk && ORDERED_TYPES.has(field.type)) {
        const mode: CompareMode =
          field.type === 'timestamp'
            ? 'timestamp'
            : field.type === 'string' || field.type === 'date'
              ? 'by-value'
              : 'decimal';
        const order = compareValues(node.low, node.high, mode);
        if (order !== undefined && order > 0) {
          problem(
            valueAt(0),
            `the lower bound ${formatValue(node.low)} is above the upper bound ${formatValue(node.high)}: nothing can match`,
          );
        }
      }
      return;
    }
    case 'startsWith': {
      if (field.type !== 'string' && field.type !== 'code') {
        problem(
          op,
          `"startsWith" applies to string and code fields only; ${shown} is ${article(field.type)}`,
        );
        return;
      }
      if (typeof node.prefix !== 'string') {
        problem(valueAt(0), `"startsWith" needs a string in double quotes, found ${String(node.prefix)}`);
        return;
      }
      const list = field.type === 'code' ? context.dictionary.codeLists.get(field.codeList) : undefined;
      const prefix = node.prefix;
      if (list?.complete && !list.codes.some((code) => code.code.startsWith(prefix)))
        problem(valueAt(0), `no code in the ${list.id} code list starts with ${formatValue(prefix)}`);
      return;
    }
  }
}

/**
 * Type-checks a filter against its dataset: every path names a field (nested record fields through dots,
 * never through an array), every value fits its field's type (string, code and date as strings, dates
 * real; int, long and decimal as numbers, a decimal also as a numeric string; boolean as true/false;
 * timestamps as ISO 8601 strings with a time zone), ordering operators and `between` only on ordered
 * types, `startsWith` only on strings and codes, codes in the field's code list, and `in` lists of 1 to
 * 1000 values. Returns every problem found (empty when the filter is well typed), each with the position
 * of the offending token.
 */
export function checkFilter(ast: FilterAst, dataset: Dataset, dictionary: Dictionary): FilterProblem[] {
  const context: CheckContext = { dataset, dictionary, problems: [], spans: spansOf(ast) };
  checkNode(ast, context);
  return context.problems;
}
