import { z } from 'zod';
import type { SourceFile } from '../../infra/config/yaml-file.ts';
import { CompatibilityLevels, type CompatibilityLevel } from '../registry/compatibility.ts';

/** Who may see a field. A `secret` field must name an encryption policy (state-secret law). */
export const Classifications = ['public', 'internal', 'personal', 'sensitive-personal', 'secret'] as const;
export type Classification = (typeof Classifications)[number];

/** How a dataset is governed (Decree 278/2025): national master data is FULL_TRANSITIVE by default. */
export const DatasetKinds = ['national-master-data', 'specialized-master-data', 'shared', 'open'] as const;
export type DatasetKind = (typeof DatasetKinds)[number];

/** Identifier rules a string field can be bound to; validators in `identifiers.ts`. */
export const IdentifierRules = ['personal-id', 'tax-code', 'province-code', 'commune-code'] as const;
export type IdentifierRule = (typeof IdentifierRules)[number];

/** Encryption policies a secret or sensitive field can carry (the security issue implements them). */
export const EncryptionPolicies = ['field-level-aes-gcm'] as const;

/** Names of sibling fields holding what a personal ID encodes. */
export interface IdentifierContext {
  birthDate?: string;
  gender?: string;
  birthProvince?: string;
}

export interface Text {
  vi: string;
  en: string;
}

/** The shape of a value, without the field's name and governance. Recursive through record and array. */
export type TypeSpec =
  | {
      type: 'string';
      identifier?: IdentifierRule;
      /** Sibling fields the identifier must agree with (a personal ID's birth year, gender, province). */
      identifierContext?: IdentifierContext;
      maxLength?: number;
      pattern?: string;
    }
  | { type: 'int' | 'long' | 'boolean' | 'date' | 'timestamp' }
  | { type: 'decimal'; precision: number; scale: number }
  | { type: 'code'; codeList: string }
  | { type: 'record'; fields: Field[] }
  | { type: 'array'; items: TypeSpec };
export type FieldType = TypeSpec['type'];

/** One field of a dataset record. */
export type Field = TypeSpec & {
  name: string;
  required: boolean;
  /** Avro default, written as the Avro JSON value; optional fields default to null. */
  default?: unknown;
  classification: Classification;
  description: Text;
  /** The value is another dataset's identification key (checked for form, not existence). */
  references?: { dataset: string };
  encryption?: (typeof EncryptionPolicies)[number];
};

const TextSchema = z.object({ vi: z.string().min(1), en: z.string().min(1) }).strict();
const FieldName = z.string().regex(/^[a-z][a-z0-9_]*$/, 'field names are snake_case: [a-z][a-z0-9_]*');

const typeShapes = {
  string: {
    type: z.literal('string'),
    identifier: z.enum(IdentifierRules).optional(),
    identifierContext: z
      .object({
        birthDate: FieldName.optional(),
        gender: FieldName.optional(),
        birthProvince: FieldName.optional(),
      })
      .strict()
      .optional(),
    maxLength: z.number().int().positive().optional(),
    pattern: z.string().min(1).optional(),
  },
  int: { type: z.literal('int') },
  long: { type: z.literal('long') },
  boolean: { type: z.literal('boolean') },
  date: { type: z.literal('date') },
  timestamp: { type: z.literal('timestamp') },
  decimal: {
    type: z.literal('decimal'),
    precision: z.number().int().min(1).max(38),
    scale: z.number().int().min(0),
  },
  code: { type: z.literal('code'), codeList: z.string().min(1) },
} as const;

export const TypeSpecSchema: z.ZodType<TypeSpec> = z.lazy(() =>
  z.discriminatedUnion('type', [
    ...Object.values(typeShapes).map((shape) => z.object(shape).strict()),
    z.object({ type: z.literal('record'), fields: z.array(FieldSchema).min(1) }).strict(),
    z.object({ type: z.literal('array'), items: TypeSpecSchema }).strict(),
  ] as unknown as [z.ZodObject, ...z.ZodObject[]]),
) as unknown as z.ZodType<TypeSpec>;

const fieldCommon = {
  name: FieldName,
  required: z.boolean(),
  default: z.unknown().optional(),
  classification: z.enum(Classifications),
  description: TextSchema,
  references: z
    .object({ dataset: z.string().min(1) })
    .strict()
    .optional(),
  encryption: z.enum(EncryptionPolicies).optional(),
};

export const FieldSchema: z.ZodType<Field> = z.lazy(() =>
  z.discriminatedUnion('type', [
    ...Object.values(typeShapes).map((shape) => z.object({ ...fieldCommon, ...shape }).strict()),
    z.object({ ...fieldCommon, type: z.literal('record'), fields: z.array(FieldSchema).min(1) }).strict(),
    z.object({ ...fieldCommon, type: z.literal('array'), items: TypeSpecSchema }).strict(),
  ] as unknown as [z.ZodObject, ...z.ZodObject[]]),
) as unknown as z.ZodType<Field>;

export const DatasetSchema = z
  .object({
    id: z
      .string()
      .regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/, 'dataset ids look like "population.citizen"'),
    owner: z.string().regex(/^[A-Z][A-Z0-9-]*$/, 'owner is an agency code such as "BCA"'),
    kind: z.enum(DatasetKinds),
    description: TextSchema,
    key: z.object({ field: FieldName }).strict(),
    retention: z.union([
      z.literal('unlimited'),
      z.string().regex(/^\d+d$/, 'retention is "unlimited" or "<days>d"'),
    ]),
    /** Overrides the level the kind implies. */
    compatibility: z.enum(CompatibilityLevels).optional(),
    fields: z.array(FieldSchema).min(1),
  })
  .strict();
export type Dataset = z.infer<typeof DatasetSchema>;

export const CodeListSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]*$/),
    description: TextSchema,
    source: z.string().min(1),
    /** false while only a sample of the codes is loaded. */
    complete: z.boolean(),
    /** Codes of another list this list's codes were merged into (old → new mapping). */
    successorList: z.string().optional(),
    codes: z
      .array(
        z
          .object({
            code: z.string().min(1),
            name: TextSchema,
            /** The code of the enclosing unit (a commune's province). */
            parent: z.string().optional(),
            /** The code in `successorList` that replaced this one. */
            successor: z.string().optional(),
          })
          .strict(),
      )
      .min(1),
  })
  .strict();
export type CodeList = z.infer<typeof CodeListSchema>;

export const AgencySchema = z
  .object({
    code: z.string().regex(/^[A-Z][A-Z0-9-]*$/),
    name: TextSchema,
    kind: z.enum(['ministry', 'court', 'procuracy', 'peoples-committee', 'platform-operator', 'agency']),
    contact: z.object({ unit: z.string().min(1), email: z.string().email() }).strict(),
  })
  .strict();
export type Agency = z.infer<typeof AgencySchema>;
export const AgenciesFileSchema = z.object({ agencies: z.array(AgencySchema).min(1) }).strict();

/** The key field of a dataset: always present, required and a string (identification codes are text). */
export function keyField(dataset: Dataset): Field {
  const field = dataset.fields.find((candidate) => candidate.name === dataset.key.field);
  if (!field)
    throw new Error(`dataset ${dataset.id}: key field "${dataset.key.field}" is not among its fields`);
  return field;
}

/**
 * The registry compatibility level of a dataset's subjects: national master data may break no reader,
 * past or future (FULL_TRANSITIVE); everything else keeps all old data readable (BACKWARD_TRANSITIVE).
 */
export function compatibilityOf(dataset: Dataset): CompatibilityLevel {
  return (
    dataset.compatibility ??
    (dataset.kind === 'national-master-data' ? 'FULL_TRANSITIVE' : 'BACKWARD_TRANSITIVE')
  );
}

/** The whole Shared Data Dictionary, loaded and cross-checked (`dictionary.ts`). */
export interface Dictionary {
  agencies: ReadonlyMap<string, Agency>;
  datasets: ReadonlyMap<string, Dataset>;
  codeLists: ReadonlyMap<string, CodeList>;
  /** Where each definition came from. Keys: `agencies`, `dataset:<id>`, `code-list:<id>`. */
  sources: ReadonlyMap<string, SourceFile>;
}
