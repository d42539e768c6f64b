import { z } from 'zod';

/** Who may see a field. `secret` fields need an encryption policy (dictionary issue). */
export const Classifications = ['public', 'internal', 'personal', 'sensitive-personal', 'secret'] as const;
export type Classification = (typeof Classifications)[number];

/** How a dataset is governed (Decree 278/2025 art. on master data). */
export const DatasetKinds = ['national-master-data', 'specialized-master-data', 'shared', 'open'] as const;

/** Identifier rules a string field can be bound to; each has a validator in schemas/model/identifiers.ts. */
export const IdentifierRules = ['personal-id', 'tax-code', 'commune-code', 'province-code'] as const;

const Text = z.object({ vi: z.string().min(1), en: z.string().min(1) }).strict();
const FieldName = z.string().regex(/^[a-z][a-z0-9_]*$/, 'field names are snake_case: [a-z][a-z0-9_]*');

const FieldCommon = {
  name: FieldName,
  required: z.boolean(),
  classification: z.enum(Classifications),
  description: Text,
};

/** One field of a dataset record. `type` picks the shape; everything is explicit, nothing inferred. */
export const FieldSchema = z.discriminatedUnion('type', [
  z
    .object({
      ...FieldCommon,
      type: z.literal('string'),
      identifier: z.enum(IdentifierRules).optional(),
      maxLength: z.number().int().positive().optional(),
    })
    .strict(),
  z.object({ ...FieldCommon, type: z.literal('int') }).strict(),
  z.object({ ...FieldCommon, type: z.literal('long') }).strict(),
  z.object({ ...FieldCommon, type: z.literal('boolean') }).strict(),
  z.object({ ...FieldCommon, type: z.literal('date') }).strict(),
  z.object({ ...FieldCommon, type: z.literal('timestamp') }).strict(),
  z.object({ ...FieldCommon, type: z.literal('code'), codeList: z.string().min(1) }).strict(),
]);
export type Field = z.infer<typeof FieldSchema>;
export type FieldType = Field['type'];

export const DatasetSchema = z
  .object({
    id: z
      .string()
      .regex(/^[a-z][a-z0-9-]*(\.[a-z][a-z0-9-]*)+$/, 'dataset ids look like "population.citizen"'),
    owner: z.string().regex(/^[A-Z][A-Z0-9-]*$/, 'owner is an agency code such as "BCA"'),
    kind: z.enum(DatasetKinds),
    description: Text,
    key: z.object({ field: FieldName }).strict(),
    retention: z.union([
      z.literal('unlimited'),
      z.string().regex(/^\d+d$/, 'retention is "unlimited" or "<days>d"'),
    ]),
    fields: z.array(FieldSchema).min(1),
  })
  .strict();
export type Dataset = z.infer<typeof DatasetSchema>;

export const CodeListSchema = z
  .object({
    id: z.string().regex(/^[a-z][a-z0-9-]*$/),
    description: Text,
    source: z.string().min(1),
    /** false while only a sample of the codes is loaded. */
    complete: z.boolean(),
    codes: z
      .array(z.object({ code: z.string().min(1), parent: z.string().optional(), name: Text }).strict())
      .min(1),
  })
  .strict();
export type CodeList = z.infer<typeof CodeListSchema>;

/** The key field of a dataset: always present, required and a string (identification codes are text). */
export function keyField(dataset: Dataset): Field {
  const field = dataset.fields.find((candidate) => candidate.name === dataset.key.field);
  if (!field)
    throw new Error(`dataset ${dataset.id}: key field "${dataset.key.field}" is not among its fields`);
  return field;
}
