import { z } from 'zod';
import { LtError } from '../../infra/errors.ts';

/** Settings of the query API (decree method (a)); every bound of its input is here. */
export const QueryApiOptionsSchema = z
  .object({
    /**
     * Most requests one agency may make per {@link rateWindowMs}, counted in Redis (every instance shares it).
     * @default 600
     */
    rateLimit: z.number().int().positive().default(600),
    /** The rate-limit window. @default 60000 */
    rateWindowMs: z.number().int().positive().default(60_000),
    /**
     * How long the agreements of one (agency, dataset) are reused before they are read again. Validity windows
     * are checked on every call against the clock; a suspension or revocation takes effect within this time.
     * 0 reads them on every call. @default 1000
     */
    agreementCacheMs: z.number().int().min(0).max(60_000).default(1_000),
    /**
     * Most `query_audit` INSERTs in flight at once (each its own commit; calls arriving meanwhile share the
     * next one). Keep it below the platform pool's size (8 in `lienthong query serve`). @default 4
     */
    auditConcurrency: z.number().int().min(1).max(64).default(4),
    /**
     * How long a verified credential (principal and password) is reused before its file is read again. Counted
     * from the check, never extended by use: a rotation or revocation takes effect within this time. 0 checks
     * on every call. @default 1000
     */
    credentialCacheMs: z.number().int().min(0).max(60_000).default(1_000),
    /** Largest request body in bytes. @default 16384 */
    bodyLimit: z
      .number()
      .int()
      .positive()
      .default(16 * 1024),
    /** Most records one page may hold (`limit` ≤ this). @default 1000 */
    maxLimit: z.number().int().min(1).max(1000).default(1000),
    /** Records per page when the caller names no `limit`. @default 100 */
    defaultLimit: z.number().int().min(1).max(1000).default(100),
    /** Longest filter text, in characters. @default 2000 */
    maxFilterLength: z.number().int().positive().default(2000),
    /** Deepest nesting of a caller's filter (and/or/not levels). @default 16 */
    maxFilterDepth: z.number().int().positive().default(16),
    /**
     * Most NGDB rows one POST reads before answering (with a cursor to go on): a filter that matches few
     * rows costs a bounded time per page. @default 10000
     */
    maxScan: z.number().int().positive().default(10_000),
  })
  .strict();

export type QueryApiOptions = z.input<typeof QueryApiOptionsSchema>;
export type QueryApiSettings = z.output<typeof QueryApiOptionsSchema>;

export const QUERY_API_DEFAULTS: QueryApiSettings = QueryApiOptionsSchema.parse({});

/** The settings, or LT_CONFIG_INVALID naming the option and the rule it broke. */
export function queryApiSettings(options: QueryApiOptions = {}): QueryApiSettings {
  const parsed = QueryApiOptionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new LtError(
      'LT_CONFIG_INVALID',
      `query API options: ${parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`).join('; ')}`,
      { hint: 'fix the option named; docs/query.md lists them with their defaults' },
    );
  }
  if (parsed.data.defaultLimit > parsed.data.maxLimit) {
    throw new LtError('LT_CONFIG_INVALID', 'query API options: defaultLimit exceeds maxLimit', {
      hint: 'make defaultLimit ≤ maxLimit',
    });
  }
  return parsed.data;
}
