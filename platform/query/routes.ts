import rateLimit from '@fastify/rate-limit';
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { LtError, toLtError, type ErrorCode } from '../../infra/errors.ts';
import {
  authenticatedPrincipal,
  cachedCheck,
  REALM,
  type PasswordCheck,
} from '../../infra/http/principal-auth.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { Redis, RedisClient } from '../../infra/redis/client.ts';
import { leasedRedisStore } from '../../infra/redis/leased-rate-store.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import { compileFilter, formatFilter, type FilterAst } from '../agreements/filter.ts';
import type { Agreement } from '../agreements/model.ts';
import type { AgreementStore } from '../agreements/store.ts';
import { agencyOf, answeredFields, callerFilter, datasetOf, queryAgreement } from './access.ts';
import { QueryAuditWriter, type QueryAuditEntry } from './audit.ts';
import { issueCursor, readCursor, type CursorScope } from './cursor.ts';
import { queryApiSettings, type QueryApiOptions, type QueryApiSettings } from './options.ts';
import { readOne, readPage, type StoredRecord } from './read.ts';
import { RESPONSE_HASH_HEADER, responseHash, type HashedRequest } from './response-hash.ts';
import {
  DatasetParam,
  GetQuery,
  KeyParam,
  SearchBody,
  SearchQuery,
  type QueryRecordOutput,
} from './schemas.ts';

/** HTTP status per error code; anything else is a 500 answered as LT_INTERNAL. */
export const QUERY_HTTP_STATUS: Partial<Record<ErrorCode, number>> = {
  LT_MALFORMED_INPUT: 400,
  LT_CURSOR_INVALID: 400,
  LT_UNAUTHORIZED: 401,
  LT_FORBIDDEN: 403,
  LT_DATASET_UNKNOWN: 404,
  LT_QUERY_NOT_FOUND: 404,
  LT_RATE_LIMITED: 429,
  LT_POSTGRES_UNREACHABLE: 503,
};

/** What the query API needs. */
export interface QueryApiDeps {
  /** A pool whose search_path is the NGDB's schema (the NGDB sink's tables). */
  ngdb: Pool;
  /** The platform's pool (schema of the agreements and of `query_audit`), migrated. */
  platform: Pool;
  agreements: AgreementStore;
  dictionary: Dictionary;
  /**
   * Checks a principal's password (credentialsUnder(LIENTHONG_HOME)); its successes are reused for
   * `credentialCacheMs`.
   */
  check: PasswordCheck;
  /** Counts the per-agency rate limit, shared by every instance. */
  redis: RedisClient;
  /** Signs cursors; at least 32 bytes, the same on every instance. */
  cursorSecret: Buffer;
  options?: QueryApiOptions;
  /** The clock for agreement validity and for the credential and agreement caches; default the system clock. */
  now?: () => Date;
}

/** A GET's NGDB read, started as soon as the caller is authenticated (see `prefetch`). */
interface Prefetch {
  dataset: string;
  key: string;
  asOf: string | undefined;
  stored: Promise<StoredRecord | null>;
}

/** What one call is about, filled in as the request is understood; the audit row is made from it. */
type Call = Omit<QueryAuditEntry, 'resultCount' | 'status' | 'errorCode' | 'responseHash'>;

function malformed(what: string, error: z.ZodError): LtError {
  const problems = error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : 'body',
    message: issue.message,
  }));
  return new LtError(
    'LT_MALFORMED_INPUT',
    `${what}: ${problems.map((problem) => `${problem.field}: ${problem.message}`).join('; ')}`,
    { details: { problems }, hint: 'docs/query.md describes every parameter and its bounds' },
  );
}

function parse<T extends z.ZodType>(schema: T, value: unknown, what: string): z.output<T> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw malformed(what, parsed.error);
  return parsed.data;
}

/** The same answer for "no such key" and "a key outside your rows": it tells nothing either way. */
function notFound(dataset: string, key: string): LtError {
  return new LtError('LT_QUERY_NOT_FOUND', `no record "${key}" of ${dataset} within your agreement`, {
    hint: 'check the key; a record outside the agreement’s rows, or deleted (by asOf), is not found either',
  });
}

function toQueryRecord(stored: StoredRecord, fields: readonly string[]): QueryRecordOutput {
  const data: Record<string, unknown> = {};
  for (const name of fields) data[name] = stored.record[name] ?? null;
  return {
    key: stored.key,
    version: stored.version,
    sourceAgency: stored.sourceAgency,
    occurredAt: stored.occurredAt.toISOString(),
    data,
  };
}

function rateLimited(after: string): LtError {
  return new LtError('LT_RATE_LIMITED', `too many requests from this agency; retry in ${after}`, {
    hint: 'wait for the Retry-After seconds, and spread requests over the window',
  });
}

/**
 * The query API (decree method (a)), served from the NGDB:
 *
 *   GET  /v1/query/{dataset}/{key}?purpose=…[&asOf=…][&fields=a,b][&agreement=id]   one record
 *   POST /v1/query/{dataset}?purpose=…[&agreement=id]   body { filter?, fields?, limit?, cursor?, asOf? }   a page
 *
 * The caller authenticates with HTTP Basic as its agency's principal (`agency.<code>`, the identity of its
 * Agent Node) and is authorized by its one active agreement with method `query` for the dataset: exactly the
 * agreement's fields and rows. Every call, answered or refused, is a row of `query_audit`. Every response
 * carries `X-Lienthong-Response-Hash` (response-hash.ts). Statuses and reasons: docs/query.md.
 */
export async function registerQueryRoutes(app: FastifyInstance, deps: QueryApiDeps): Promise<void> {
  const settings: QueryApiSettings = queryApiSettings(deps.options);
  if (deps.cursorSecret.length < 32) throw new Error('the cursor secret must be at least 32 bytes');
  const now = deps.now ?? (() => new Date());
  const check = cachedCheck(deps.check, { ttlMs: settings.credentialCacheMs, now: () => now().getTime() });
  const audit = new QueryAuditWriter(deps.platform, settings.auditConcurrency);
  const calls = new WeakMap<FastifyRequest, Call>();
  const rawBodies = new WeakMap<FastifyRequest, string>();
  const predicates = new Map<string, (record: Record<string, unknown>) => boolean>();
  const prefetched = new WeakMap<FastifyRequest, Prefetch>();
  /** Callers this instance saw over their rate limit, until their window ends: no prefetch for them. */
  const limitedUntil = new Map<string, number>();
  const agreementCache = new Map<string, { until: number; agreements: Promise<Agreement[]> }>();

  /** The agency's agreements for the dataset, read at most once per `agreementCacheMs`. */
  const agreementsOf = (agency: string, dataset: string): Promise<Agreement[]> => {
    const id = `${agency}\u0000${dataset}`;
    const cached = agreementCache.get(id);
    const at = now().getTime();
    if (cached && cached.until > at) return cached.agreements;
    const agreements = deps.agreements.list({ subscriber: agency, dataset });
    if (settings.agreementCacheMs > 0) {
      if (agreementCache.size > 10_000) agreementCache.clear();
      agreementCache.set(id, { until: at + settings.agreementCacheMs, agreements });
      agreements.catch(() => agreementCache.delete(id)); // a failed read is not remembered
    }
    return agreements;
  };

  /** The agreement's row filter, compiled once per revision. */
  const agreementRows = (
    agreement: Agreement,
    dataset: Dataset,
  ): ((record: Record<string, unknown>) => boolean) => {
    const id = `${agreement.id}@${agreement.revision}`;
    let predicate = predicates.get(id);
    if (!predicate) {
      predicate = compileFilter(agreement.filter, dataset);
      if (predicates.size > 1000) predicates.clear();
      predicates.set(id, predicate);
    }
    return predicate;
  };

  const hashed = (request: FastifyRequest, caller: string): HashedRequest => {
    const url = request.raw.url ?? request.url;
    const query = Object.fromEntries(new URLSearchParams(url.split('?')[1] ?? '').entries());
    return {
      method: request.method,
      path: url.split('?')[0] ?? url,
      query,
      caller,
      body: rawBodies.get(request) ?? '',
    };
  };

  /** Audits the call, then sends `body` with the hash that binds it to the request. */
  const answer = async (
    request: FastifyRequest,
    reply: FastifyReply,
    status: number,
    body: unknown,
    outcome: { resultCount: number; errorCode: string | null },
  ): Promise<FastifyReply> => {
    const call = calls.get(request) ?? initialCall(request);
    const text = JSON.stringify(body);
    const hash = responseHash(hashed(request, call.caller), text);
    const entry: QueryAuditEntry = { ...call, ...outcome, status, responseHash: hash };
    await audit.record(entry);
    return reply
      .status(status)
      .header(RESPONSE_HASH_HEADER, hash)
      .header('cache-control', 'no-store')
      .type('application/json; charset=utf-8')
      .send(text);
  };

  const initialCall = (request: FastifyRequest): Call => {
    const params = (request.params ?? {}) as { dataset?: unknown; key?: unknown };
    const query = (request.query ?? {}) as { purpose?: unknown };
    return {
      caller: 'anonymous',
      agency: null,
      purpose: typeof query.purpose === 'string' && query.purpose.trim() !== '' ? query.purpose : null,
      dataset: typeof params.dataset === 'string' ? params.dataset : '',
      agreementId: null,
      kind: request.method === 'POST' ? 'search' : 'get',
      key: typeof params.key === 'string' ? params.key : null,
      filter: null,
      fields: null,
      asOf: null,
    };
  };

  const sendError = async (
    error: FastifyError | Error,
    request: FastifyRequest,
    reply: FastifyReply,
  ): Promise<FastifyReply> => {
    let lt: LtError;
    const statusCode = (error as FastifyError).statusCode;
    if (error instanceof LtError) lt = error;
    else if (statusCode === 413)
      lt = new LtError('LT_MALFORMED_INPUT', `the body is larger than ${settings.bodyLimit} bytes`);
    else if (statusCode !== undefined && statusCode >= 400 && statusCode < 500)
      lt = new LtError('LT_MALFORMED_INPUT', error.message); // fastify's own: not JSON, wrong media type
    else lt = toLtError(error);
    const status =
      error instanceof LtError
        ? (QUERY_HTTP_STATUS[lt.code] ?? 500)
        : statusCode !== undefined && statusCode >= 400 && statusCode < 500
          ? statusCode
          : 500;
    if (status >= 500) request.log.error({ err: error }, 'query request failed');
    if (status === 401) void reply.header('www-authenticate', REALM);
    const body =
      status >= 500 && lt.code === 'LT_INTERNAL'
        ? { error: 'LT_INTERNAL', message: 'an unexpected failure; see the platform log' }
        : {
            error: lt.code,
            message: lt.message,
            ...(Object.keys(lt.details).length > 0 ? { details: lt.details } : {}),
            ...(lt.hint ? { hint: lt.hint } : {}),
          };
    try {
      return await answer(request, reply, status, body, { resultCount: 0, errorCode: lt.code });
    } catch (auditError) {
      // no audit row, no answer: a call the platform cannot record is not served
      request.log.error({ err: auditError }, 'query audit failed');
      return reply.status(503).send({
        error: 'LT_POSTGRES_UNREACHABLE',
        message: 'the query audit cannot be written; retry later',
      });
    }
  };

  await app.register(async (scope) => {
    scope.setErrorHandler(sendError);
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      'application/json',
      { parseAs: 'string', bodyLimit: settings.bodyLimit },
      (request, body, done) => {
        const text = String(body);
        rawBodies.set(request, text);
        try {
          done(null, text === '' ? undefined : JSON.parse(text));
        } catch {
          done(new LtError('LT_MALFORMED_INPUT', 'the body is not JSON'), undefined);
        }
      },
    );

    /**
     * A GET's record is read from the NGDB while the rate limit is counted in Redis, instead of after it: one
     * round trip of latency less. The read only fetches — the handler decides, as before, whether anything of
     * it is answered (agreement, fields, rows) — and it is skipped for a caller this instance saw over its limit
     * in the current window, so a flood of refused calls does not become a flood of reads.
     */
    const prefetch = (request: FastifyRequest, caller: string): void => {
      if (request.method !== 'GET' || request.routeOptions.url !== '/v1/query/:dataset/:key') return;
      if ((limitedUntil.get(caller) ?? 0) > Date.now()) return;
      const params = request.params as { dataset?: unknown; key?: unknown };
      const dataset = DatasetParam.safeParse(params.dataset);
      const key = KeyParam.safeParse(params.key);
      const query = GetQuery.safeParse(request.query ?? {});
      if (!dataset.success || !key.success || !query.success) return;
      const known = deps.dictionary.datasets.get(dataset.data);
      if (!known) return;
      const asOf = query.data.asOf;
      const stored = readOne(deps.ngdb, known, key.data, asOf ? new Date(asOf) : null);
      stored.catch(() => undefined); // a call refused before it awaits the read leaves no unhandled rejection
      prefetched.set(request, { dataset: known.id, key: key.data, asOf, stored });
    };

    // who: authenticated before anything else, so the rate limit counts verified agencies
    scope.addHook('onRequest', async (request) => {
      const call = initialCall(request);
      calls.set(request, call);
      call.caller = authenticatedPrincipal(request, check);
      prefetch(request, call.caller);
    });

    await scope.register(rateLimit, {
      global: true,
      hook: 'preHandler',
      max: settings.rateLimit,
      timeWindow: settings.rateWindowMs,
      // counted in Redis in leases of numbers, not one round trip a call (infra/redis/leased-rate-store.ts)
      store: leasedRedisStore({ redis: deps.redis as Redis, nameSpace: 'lt-query-rate:' }),
      skipOnError: false,
      keyGenerator: (request) => calls.get(request)?.caller ?? 'anonymous',
      errorResponseBuilder: (request, context) => {
        const caller = calls.get(request)?.caller;
        if (caller !== undefined) {
          if (limitedUntil.size > 10_000) limitedUntil.clear();
          limitedUntil.set(caller, Date.now() + context.ttl);
        }
        return rateLimited(context.after);
      },
    });

    /** The caller's agency and the one active query agreement it calls under, both noted on the call. */
    const agreementOfCall = async (call: Call, datasetId: string, named: string | undefined) => {
      const agency = agencyOf(call.caller);
      call.agency = agency;
      const agreement = queryAgreement(
        await agreementsOf(agency, datasetId),
        agency,
        datasetId,
        now(),
        named,
      );
      call.agreementId = agreement.id;
      return agreement;
    };

    scope.get('/v1/query/:dataset/:key', async (request, reply) => {
      const call = calls.get(request)!;
      const params = request.params as { dataset: string; key: string };
      const dataset = datasetOf(
        deps.dictionary,
        parse(DatasetParam, params.dataset, 'the dataset is invalid'),
      );
      const query = parse(GetQuery, request.query ?? {}, 'the query string is invalid');
      call.purpose = query.purpose;
      const key = parse(KeyParam, params.key, 'the key is invalid');
      const asked = query.fields === undefined ? undefined : query.fields.split(',').filter(Boolean);
      call.fields = asked ?? null;
      call.asOf = query.asOf ? new Date(query.asOf) : null;
      const agreement = await agreementOfCall(call, dataset.id, query.agreement);
      const fields = answeredFields(dataset, agreement, asked);
      call.fields = fields;
      const early = prefetched.get(request);
      const stored = await (early &&
      early.dataset === dataset.id &&
      early.key === key &&
      early.asOf === query.asOf
        ? early.stored
        : readOne(deps.ngdb, dataset, key, call.asOf));
      if (!stored || !agreementRows(agreement, dataset)(stored.record)) throw notFound(dataset.id, key);
      return answer(
        request,
        reply,
        200,
        {
          dataset: dataset.id,
          agreement: agreement.id,
          asOf: call.asOf?.toISOString() ?? null,
          record: toQueryRecord(stored, fields),
        },
        { resultCount: 1, errorCode: null },
      );
    });

    scope.post('/v1/query/:dataset', async (request, reply) => {
      const call = calls.get(request)!;
      const params = request.params as { dataset: string };
      const dataset = datasetOf(
        deps.dictionary,
        parse(DatasetParam, params.dataset, 'the dataset is invalid'),
      );
      const query = parse(SearchQuery, request.query ?? {}, 'the query string is invalid');
      call.purpose = query.purpose;
      const body = parse(SearchBody, request.body ?? {}, 'the body is invalid');
      call.filter = body.filter ?? null;
      call.fields = body.fields ?? null;
      call.asOf = body.asOf ? new Date(body.asOf) : null;
      const limit = body.limit ?? settings.defaultLimit;
      if (limit > settings.maxLimit) {
        throw new LtError('LT_MALFORMED_INPUT', `limit ${limit} exceeds ${settings.maxLimit}`, {
          hint: `ask for at most ${settings.maxLimit} records a page and follow the cursor`,
        });
      }
      const agreement = await agreementOfCall(call, dataset.id, query.agreement);
      const fields = answeredFields(dataset, agreement, body.fields);
      call.fields = fields;
      const filter: FilterAst = callerFilter(body.filter, dataset, deps.dictionary, agreement, {
        maxLength: settings.maxFilterLength,
        maxDepth: settings.maxFilterDepth,
      });
      const scopeOfCursor: CursorScope = {
        caller: call.caller,
        agreement: agreement.id,
        dataset: dataset.id,
        filter: formatFilter(filter),
        fields,
        asOf: call.asOf?.toISOString() ?? null,
      };
      let after = body.cursor ? readCursor(deps.cursorSecret, scopeOfCursor, body.cursor) : undefined;

      const allowed = agreementRows(agreement, dataset);
      const asked = compileFilter(filter, dataset);
      const records: QueryRecordOutput[] = [];
      let scanned = 0;
      let exhausted = false;
      while (records.length < limit && scanned < settings.maxScan) {
        const chunk = Math.min(settings.maxScan - scanned, Math.max(limit, 500));
        const page = await readPage(deps.ngdb, dataset, call.asOf, chunk, after);
        for (const stored of page) {
          scanned += 1;
          after = stored.key;
          if (allowed(stored.record) && asked(stored.record)) records.push(toQueryRecord(stored, fields));
          if (records.length === limit) break;
        }
        if (page.length < chunk && records.length < limit) {
          exhausted = true;
          break;
        }
      }
      const next =
        exhausted || after === undefined ? null : issueCursor(deps.cursorSecret, scopeOfCursor, after);
      return answer(
        request,
        reply,
        200,
        {
          dataset: dataset.id,
          agreement: agreement.id,
          asOf: call.asOf?.toISOString() ?? null,
          records,
          next,
        },
        { resultCount: records.length, errorCode: null },
      );
    });
  });
}
