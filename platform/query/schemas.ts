import { z } from 'zod';

/*
 * The query API's inputs and outputs, once: the routes validate with them and the OpenAPI document is
 * generated from them (z.toJSONSchema), so the two cannot drift.
 */

/** A dataset id of the dictionary, e.g. `population.citizen`. */
export const DatasetParam = z
  .string()
  .regex(/^[a-z][a-z0-9._-]{0,99}$/, 'a dataset id such as "population.citizen"');

/** An identification key: 1–64 characters of letters, digits, `.`, `_`, `-`, e.g. `001099012345`. */
export const KeyParam = z
  .string()
  .regex(/^[0-9A-Za-z][0-9A-Za-z._-]{0,63}$/, '1–64 characters of letters, digits, ".", "_" and "-"');

/** A point in time with a time zone, e.g. `2026-05-01T00:00:00+07:00`. */
const AsOf = z.iso.datetime({ offset: true }).describe('the state at this source time (inclusive)');

/** The declared purpose of a call, written into the audit (Personal Data Protection Law 91/2025). */
const Purpose = z
  .string()
  .trim()
  .min(1, 'state the purpose of the call (purpose=…)')
  .max(500, 'a purpose is at most 500 characters');

const AgreementId = z
  .string()
  .regex(/^[a-z0-9][a-z0-9-]{1,60}$/)
  .describe('the agreement to answer under, when the caller has several active query agreements');

const FieldName = z.string().regex(/^[a-z][a-z0-9_]{0,62}$/, 'a field name such as "full_name"');

/** Query string of `GET /v1/query/{dataset}/{key}`. */
export const GetQuery = z
  .object({
    purpose: Purpose,
    asOf: AsOf.optional(),
    /** Comma-separated field names; default every field of the agreement. */
    fields: z
      .string()
      .max(2000)
      .regex(/^[a-z0-9_,]*$/, 'comma-separated field names')
      .optional()
      .describe('comma-separated fields; default every field of the agreement'),
    agreement: AgreementId.optional(),
  })
  .strict();

/** Query string of `POST /v1/query/{dataset}`. */
export const SearchQuery = z.object({ purpose: Purpose, agreement: AgreementId.optional() }).strict();

/** Body of `POST /v1/query/{dataset}`. */
export const SearchBody = z
  .object({
    /** A filter in the agreement filter language (docs/agreements.md); default `true`. */
    filter: z.string().max(2000).optional().describe('a filter in the agreement filter language'),
    fields: z.array(FieldName).max(200).optional(),
    limit: z.number().int().min(1).max(1000).optional(),
    /** The `next` of the previous page, unchanged. */
    cursor: z.string().max(2000).optional(),
    asOf: AsOf.optional(),
  })
  .strict();

/** One record as the API answers it. */
export const QueryRecord = z.object({
  key: z.string(),
  version: z.number().int(),
  sourceAgency: z.string(),
  occurredAt: z.string().describe('ISO 8601'),
  data: z.record(z.string(), z.unknown()).describe('exactly the agreed (and asked) fields'),
});

export const GetResponse = z.object({
  dataset: z.string(),
  agreement: z.string(),
  asOf: z.string().nullable(),
  record: QueryRecord,
});

export const SearchResponse = z.object({
  dataset: z.string(),
  agreement: z.string(),
  asOf: z.string().nullable(),
  records: z.array(QueryRecord),
  /** The cursor of the next page; null at the end. */
  next: z.string().nullable(),
});

/** Every refusal: an LT_… code, what went wrong, and what to do next. */
export const ErrorResponse = z.object({
  error: z.string(),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
  hint: z.string().optional(),
});

export type SearchBodyInput = z.output<typeof SearchBody>;
export type QueryRecordOutput = z.output<typeof QueryRecord>;
