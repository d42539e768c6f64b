import { z } from 'zod';
import type { DatasetRecord } from '../envelope/change-event.ts';
import type { Dataset, Field, IdentifierContext, TypeSpec } from './dataset.ts';
import type { Dictionary } from './dictionary.ts';
import {
  checkAdministrativeCode,
  checkPersonalId,
  checkTaxCode,
  type Gender,
  type IdentifierProblem,
} from './identifiers.ts';

const ISO_DATE = /^\d{4}-\d{2}-\d{2}$/;
const INT32 = 2 ** 31;

/** Code lists as sets, and every province code a personal ID may carry (current and former). */
interface Lookups {
  codes(listId: string): ReadonlySet<string>;
  provinces: ReadonlySet<string>;
  communes: ReadonlySet<string>;
}

function lookups(dictionary: Dictionary): Lookups {
  const cache = new Map<string, Set<string>>();
  const codes = (listId: string): ReadonlySet<string> => {
    let set = cache.get(listId);
    if (!set) {
      set = new Set(dictionary.codeLists.get(listId)?.codes.map((code) => code.code) ?? []);
      cache.set(listId, set);
    }
    return set;
  };
  return {
    codes,
    provinces: new Set([...codes('province'), ...codes('province-before-2025')]),
    communes: codes('commune'),
  };
}

const DAYS_IN_MONTH = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** YYYY-MM-DD naming a day of the proleptic Gregorian calendar (checked by arithmetic: it runs per field). */
function isRealDate(value: string): boolean {
  if (!ISO_DATE.test(value)) return false;
  const year = Number(value.slice(0, 4));
  const month = Number(value.slice(5, 7));
  const day = Number(value.slice(8, 10));
  if (month < 1 || month > 12 || day < 1) return false;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  return day <= (month === 2 && leap ? 29 : DAYS_IN_MONTH[month - 1]!);
}

function decimalSchema(precision: number, scale: number): z.ZodType<string> {
  return z
    .string({
      error: `a decimal is written as a string such as "1250000.5" (precision ${precision}, scale ${scale})`,
    })
    .regex(/^-?\d+(\.\d+)?$/, 'not a decimal number')
    .refine(
      (value) => (value.split('.')[1] ?? '').length <= scale,
      `more than ${scale} digits after the point`,
    )
    .refine(
      // stored scaled to `scale` digits, so the whole part may have at most precision − scale digits
      (value) =>
        (value.replace(/^-/, '').split('.')[0] ?? '').replace(/^0+(?=\d)/, '').length <= precision - scale,
      `more than ${precision - scale} digits before the point (precision ${precision}, scale ${scale})`,
    );
}

function identifierProblems(rule: string, value: string, look: Lookups): IdentifierProblem[] {
  switch (rule) {
    case 'personal-id':
      return checkPersonalId(value, { provinceCodes: look.provinces });
    case 'tax-code':
      return checkTaxCode(value);
    case 'province-code':
      return checkAdministrativeCode(value, 'province', look.codes('province'));
    case 'commune-code':
      return checkAdministrativeCode(value, 'commune', look.communes);
    default:
      return [];
  }
}

/** A zod schema for one value of the given type. Records are strict: an unknown field is refused. */
function valueSchema(spec: TypeSpec, look: Lookups): z.ZodType {
  switch (spec.type) {
    case 'string': {
      let schema = z.string({ error: 'expected a string' });
      if (spec.maxLength !== undefined)
        schema = schema.max(spec.maxLength, `longer than ${spec.maxLength} characters`);
      if (spec.pattern !== undefined)
        schema = schema.regex(new RegExp(spec.pattern), `does not match ${spec.pattern}`);
      const rule = spec.identifier;
      if (!rule || spec.identifierContext) return schema; // context-bound identifiers are checked on the record
      return schema.superRefine((value, ctx) => {
        for (const problem of identifierProblems(rule, value, look))
          ctx.addIssue({ code: 'custom', message: problem.message });
      });
    }
    case 'code': {
      const known = look.codes(spec.codeList);
      return z
        .string({ error: `expected a code from the ${spec.codeList} code list` })
        .refine((value) => known.has(value), {
          error: (issue) => `"${String(issue.input)}" is not in the ${spec.codeList} code list`,
        });
    }
    case 'int':
      return z
        .number({ error: 'expected a whole number' })
        .int('expected a whole number')
        .min(-INT32)
        .max(INT32 - 1);
    case 'long':
      return z
        .number({ error: 'expected a whole number' })
        .int('expected a whole number')
        .refine(Number.isSafeInteger, 'outside the safe integer range');
    case 'boolean':
      return z.boolean({ error: 'expected true or false' });
    case 'date':
      return z
        .string({ error: 'expected a date written YYYY-MM-DD' })
        .refine(isRealDate, 'not a real date written YYYY-MM-DD');
    case 'timestamp':
      return z.union([z.date(), z.iso.datetime({ offset: true }).transform((text) => new Date(text))], {
        error: 'expected an ISO 8601 timestamp with a time zone',
      });
    case 'decimal':
      return decimalSchema(spec.precision, spec.scale);
    case 'record':
      return recordSchema(spec.fields, look);
    case 'array':
      return z.array(valueSchema(spec.items, look), { error: 'expected an array' });
  }
}

function contextProblems(
  field: Field & { identifierContext?: IdentifierContext },
  record: Record<string, unknown>,
  look: Lookups,
): IdentifierProblem[] {
  const value = record[field.name];
  if (typeof value !== 'string' || field.type !== 'string' || field.identifier !== 'personal-id') return [];
  const context = field.identifierContext ?? {};
  const birthDate = context.birthDate ? record[context.birthDate] : undefined;
  const gender = context.gender ? record[context.gender] : undefined;
  const problems = checkPersonalId(value, {
    provinceCodes: look.provinces,
    ...(typeof birthDate === 'string' && isRealDate(birthDate) ? { birthDate } : {}),
    ...(gender === 'M' || gender === 'F' ? { gender: gender as Gender } : {}),
  });
  const province = context.birthProvince ? record[context.birthProvince] : undefined;
  if (problems.length === 0 && typeof province === 'string' && value.slice(0, 3) !== `0${province}`) {
    problems.push({
      rule: 'personal-id.birth-province',
      message: `${value}: province digits ${value.slice(0, 3)} contradict the province of birth registration ${province}`,
    });
  }
  return problems;
}

function recordSchema(fields: Field[], look: Lookups): z.ZodType<Record<string, unknown>> {
  const shape: Record<string, z.ZodType> = {};
  for (const field of fields) {
    const schema = valueSchema(field, look);
    shape[field.name] = field.required
      ? schema
      : schema
          .nullable()
          .optional()
          .transform((value) => value ?? null);
  }
  const contextual = fields.filter((field) => field.type === 'string' && field.identifierContext);
  const object = z.strictObject(shape, {
    error: (issue) =>
      issue.code === 'unrecognized_keys'
        ? `unknown field(s) ${issue.keys.map((key) => `"${key}"`).join(', ')}: not in the dictionary`
        : undefined,
  });
  if (contextual.length === 0) return object;
  return object.superRefine((record, ctx) => {
    for (const field of contextual) {
      for (const problem of contextProblems(field, record, look))
        ctx.addIssue({ code: 'custom', path: [field.name], message: problem.message });
    }
  });
}

/**
 * Checks a bare key (a DELETE carries no record): the key field's type, pattern and identifier rule,
 * without the record-bound context (a personal ID is checked for form and province, not birth year).
 */
export function createKeyValidator(dataset: Dataset, dictionary: Dictionary): (key: string) => string[] {
  const field = dataset.fields.find((candidate) => candidate.name === dataset.key.field);
  if (!field || field.type !== 'string') return () => [];
  const { identifierContext: _context, ...bare } = field;
  const schema = valueSchema(bare, lookups(dictionary));
  return (key) => {
    const parsed = schema.safeParse(key);
    return parsed.success ? [] : parsed.error.issues.map((issue) => `${dataset.key.field}: ${issue.message}`);
  };
}

export type RecordValidation =
  { ok: true; record: DatasetRecord } | { ok: false; problems: { path: string; message: string }[] };

/**
 * The zod validator generated from a dataset definition: types, required fields, code lists, identifier
 * rules (a personal ID must agree with the record's birth date, gender and birth-registration province).
 */
export function createRecordValidator(
  dataset: Dataset,
  dictionary: Dictionary,
): (input: unknown) => RecordValidation {
  const schema = recordSchema(dataset.fields, lookups(dictionary));
  return (input) => {
    const parsed = schema.safeParse(input);
    if (parsed.success) return { ok: true, record: parsed.data as DatasetRecord };
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => ({
        path: issue.path.join('.') || '(record)',
        message: issue.message,
      })),
    };
  };
}
