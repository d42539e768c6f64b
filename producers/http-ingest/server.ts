import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LtError, type ErrorCode } from '../../infra/errors.ts';
import { createHttpServer } from '../../infra/http/server.ts';
import {
  formatTraceparent,
  newSpanId,
  newTraceId,
  parseTraceparent,
  TRACEPARENT,
} from '../../infra/observability/trace.ts';
import type { RecordOutcome } from '../publisher/index.ts';
import { ingestSettings, type IngestServerOptions } from './options.ts';

/*
 * The HTTP contract of the Agent Node's ingest endpoint (docs/http-ingest.md has it with examples).
 *
 *   POST /v1/datasets/{id}/changes[?partial=true]
 *     Authorization: Bearer <token>
 *     Content-Type: application/json      one change, an array of changes, or { "changes": [...] }
 *     Content-Type: application/x-ndjson  one change per line (blank lines are skipped)
 *     traceparent: 00-<trace-id>-<parent-id>-<flags>   optional (W3C): the trace every change of the request
 *                                         joins, unless a change names its own traceId; without it, a new one.
 *                                         The response's traceparent names the trace taken.
 *   200  every record accepted                       → IngestResponse
 *   422  at least one record refused                  → IngestResponse listing every record
 *   400  body not JSON or UTF-8 / no changes / query  → IngestErrorBody LT_MALFORMED_INPUT
 *   401  token missing or unknown (WWW-Authenticate)  → IngestErrorBody LT_UNAUTHORIZED
 *   403  this Agent Node's agency does not own it     → IngestErrorBody LT_NOT_OWNER
 *   404  dataset not in the dictionary               → IngestErrorBody LT_DATASET_UNKNOWN
 *   413  body larger than maxBodyBytes, or more        → IngestErrorBody LT_MALFORMED_INPUT
 *        changes than maxRecordsPerRequest
 *   415  neither JSON nor NDJSON, or charset not UTF-8 → IngestErrorBody LT_MALFORMED_INPUT
 *   500  unexpected failure                           → IngestErrorBody LT_INTERNAL (or the LtError code)
 *   503  broker/registry unavailable (Retry-After)   → IngestErrorBody LT_PUBLISH_FAILED | LT_REGISTRY_UNREACHABLE | …
 *
 *   GET /v1/health → 200 { "status": "ok" } (no token: it says the process serves HTTP, nothing more)
 */

/** The media types a change batch may be posted in. */
export const INGEST_MEDIA_TYPES = ['application/json', 'application/x-ndjson'] as const;
export type IngestMediaType = (typeof INGEST_MEDIA_TYPES)[number];

/** What happened to one posted record, by its position among the posted records. */
export interface IngestResult {
  /** 0-based position among the records of the request (blank NDJSON lines are not records). */
  index: number;
  /** NDJSON only: the 1-based line the record was on. */
  line?: number;
  status: 'accepted' | 'rejected';
  /** The record's identification code; null when it could not be read from a refused record. */
  key: string | null;
  /** Accepted: the version published. */
  version?: number;
  /** Accepted: the event id (UUIDv7, or the one the change carried). */
  eventId?: string;
  /** Accepted: a retry of a change already published under its eventId, not sent again. */
  alreadyPublished?: true;
  /** Rejected: why, as a stable code (LT_RECORD_INVALID, LT_VERSION_STALE, LT_BATCH_REJECTED, …). */
  code?: ErrorCode;
  /** Rejected: what is wrong, naming the field and the rule. */
  message?: string;
  /** Rejected with LT_VERSION_STALE against an earlier request: the last version published for the key. */
  lastPublished?: number;
}

/** The body of a 200 or 422 answer to `POST /v1/datasets/{id}/changes`. */
export interface IngestResponse {
  dataset: string;
  /** The source topic the accepted records were published to. */
  topic: string;
  accepted: number;
  rejected: number;
  /** One entry per posted record, in the posted order. */
  results: IngestResult[];
}

/**
 * The body of every whole-request error. `LT_INTERNAL` (HTTP 500) is the one code not in infra/errors.ts:
 * a failure the Agent Node did not expect, detailed only in its log under the request id.
 */
export interface IngestErrorBody {
  error: ErrorCode | 'LT_INTERNAL';
  message: string;
  hint?: string;
}

/** A whole-request refusal with its HTTP status; turned into an IngestErrorBody by the error handler. */
class HttpFailure extends Error {
  readonly status: number;
  readonly code: ErrorCode;
  readonly hint?: string;

  constructor(status: number, code: ErrorCode, message: string, hint?: string) {
    super(message);
    this.status = status;
    this.code = code;
    this.hint = hint;
  }
}

/** HTTP status of each whole-request LtError; a retriable code not listed here answers 503. */
const STATUS_OF: Partial<Record<ErrorCode, number>> = {
  LT_MALFORMED_INPUT: 400,
  LT_UNAUTHORIZED: 401,
  LT_NOT_OWNER: 403,
  LT_DATASET_UNKNOWN: 404,
};

const SUPPORTED = `send ${INGEST_MEDIA_TYPES.join(' or ')} in UTF-8`;

/** The query string of `POST /v1/datasets/{id}/changes` (the OpenAPI document is generated from it). */
export const IngestQuerySchema = z
  .object({
    partial: z
      .enum(['true', 'false'], { error: 'partial must be true or false' })
      .optional()
      .transform((value) => value === 'true'),
  })
  .strict();

/** The body as the content-type parser hands it to the route: decoded, not yet parsed. */
interface RawBody {
  mediaType: IngestMediaType;
  text: string;
}

/** One posted record: the value handed to the publisher, or why its NDJSON line could not be read. */
interface Item {
  change: unknown;
  line?: number;
  malformed?: string;
}

/**
 * The Agent Node's HTTP ingest: agency systems that are not written in TypeScript post changes here and
 * get, per record, accepted or refused with a code and a reason. Every record goes through the same
 * Publisher path as the SDK (dictionary validation, owner check, per-key versions, bounded wait
 * for the broker), so this server adds only transport: authentication, body formats and status codes.
 *
 * The returned instance is not listening yet: call `listen(app, port, host)` from infra/http/server.ts.
 * Throws LT_CONFIG_INVALID when the tokens or limits are invalid.
 */
export function createIngestServer(options: IngestServerOptions): FastifyInstance {
  const settings = ingestSettings(options);
  const { publisher } = options;
  const log = options.log.child({ component: 'http-ingest' });
  const authenticate = tokenCheck(settings.tokens);
  const app = createHttpServer(log, options.tls);

  app.setErrorHandler((error, request, reply) => {
    const failure = asFailure(error, settings.maxBodyBytes);
    const body: IngestErrorBody =
      failure === null
        ? {
            error: 'LT_INTERNAL',
            message: `unexpected failure; the Agent Node's log has it under request id ${request.id}`,
            hint: 'some records may have been published; posting the same changes again is safe (a version already stored is ignored downstream)',
          }
        : { error: failure.code, message: failure.message, ...(failure.hint ? { hint: failure.hint } : {}) };
    const status = failure?.status ?? 500;
    if (status >= 500) request.log.warn({ err: error, status, code: body.error }, 'ingest request failed');
    else request.log.info({ status, code: body.error }, 'ingest request refused');
    return reply
      .status(status)
      .headers(status === 503 ? { 'retry-after': String(settings.retryAfterSeconds) } : {})
      .send(body);
  });

  app.get('/v1/health', async () => ({ status: 'ok' as const }));

  // The changes route lives in its own scope: only JSON and NDJSON parse there, up to maxBodyBytes.
  void app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser(
      [...INGEST_MEDIA_TYPES],
      { parseAs: 'buffer', bodyLimit: settings.maxBodyBytes },
      (request, body, done) => {
        try {
          done(null, decodeBody(request.headers['content-type'] ?? '', body as Buffer));
        } catch (error) {
          done(error as Error, undefined);
        }
      },
    );

    scope.post<{ Params: { id: string }; Querystring: unknown; Body: RawBody | undefined }>(
      '/v1/datasets/:id/changes',
      { bodyLimit: settings.maxBodyBytes, onRequest: authenticate },
      async (request, reply) => {
        const { partial } = parseQuery(request.query);
        // Unknown dataset and not-the-owner are answered before the records are looked at.
        const dataset = publisher.datasetFor(request.params.id);
        if (request.body === undefined) {
          throw new HttpFailure(
            415,
            'LT_MALFORMED_INPUT',
            'the request has no body and no content type',
            SUPPORTED,
          );
        }
        const items = readItems(request.body, settings.maxRecordsPerRequest);
        const incoming = parseTraceparent(headerValue(request.headers[TRACEPARENT]));
        const traceId = incoming?.traceId ?? newTraceId();
        request.log = request.log.child({ trace_id: traceId });
        const result = await publisher.publishBatch(
          dataset.id,
          items.map((item) => (item.malformed === undefined ? inTrace(item.change, traceId) : null)),
          { partial },
        );
        void reply.header(
          TRACEPARENT,
          formatTraceparent({ traceId, spanId: newSpanId(), flags: incoming?.flags ?? '01' }),
        );
        const results = items.map((item, index) => resultOf(item, index, result.outcomes[index]));
        const response: IngestResponse = {
          dataset: dataset.id,
          topic: result.topic,
          accepted: result.accepted,
          rejected: result.rejected,
          results,
        };
        request.log.info(
          {
            dataset: dataset.id,
            format: request.body.mediaType,
            partial,
            accepted: result.accepted,
            rejected: result.rejected,
            codes: countCodes(results),
          },
          'changes received',
        );
        return reply.status(result.rejected === 0 ? 200 : 422).send(response);
      },
    );
  });

  return app;
}

/**
 * The onRequest hook of the changes route: `Authorization: Bearer <token>`, compared as SHA-256 digests in
 * constant time against every configured digest. The token's name is bound to the request's logger.
 */
function tokenCheck(tokens: { name: string; sha256: string }[]) {
  const known = tokens.map((token) => ({ name: token.name, digest: Buffer.from(token.sha256, 'hex') }));
  return async (request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply | undefined> => {
    const header = request.headers.authorization;
    const match = header === undefined ? null : /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i.exec(header);
    let name: string | undefined;
    if (match?.[1] !== undefined) {
      const digest = createHash('sha256').update(match[1], 'utf8').digest();
      // Every digest is compared, so the time taken does not say which one (if any) matched.
      for (const token of known) if (timingSafeEqual(digest, token.digest)) name ??= token.name;
    }
    if (name !== undefined) {
      request.log = request.log.child({ client: name });
      return undefined;
    }
    const reason = header === undefined ? 'missing' : match === null ? 'not a bearer token' : 'unknown';
    request.log.info({ status: 401, reason }, 'ingest request unauthenticated');
    const body: IngestErrorBody = {
      error: 'LT_UNAUTHORIZED',
      message:
        header === undefined
          ? 'the request has no Authorization header'
          : match === null
            ? 'the Authorization header is not "Bearer <token>"'
            : 'the bearer token is not one this Agent Node knows',
      hint: 'send "Authorization: Bearer <token>" with a token whose SHA-256 digest is in the Agent Node configuration',
    };
    return reply
      .status(401)
      .header(
        'www-authenticate',
        header === undefined
          ? 'Bearer realm="lienthong"'
          : `Bearer realm="lienthong", error="${match === null ? 'invalid_request' : 'invalid_token'}"`,
      )
      .send(body);
  };
}

function parseQuery(query: unknown): { partial: boolean } {
  const parsed = IngestQuerySchema.safeParse(query ?? {});
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) =>
    issue.code === 'unrecognized_keys'
      ? `unknown query parameter(s) ${issue.keys.join(', ')}`
      : `${issue.path.join('.')}: ${issue.message}`,
  );
  throw new HttpFailure(
    400,
    'LT_MALFORMED_INPUT',
    problems.join('; '),
    'the only query parameter is partial=true|false',
  );
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** Checks the charset and decodes the body; the route parses it, so that a bad NDJSON line is one record. */
function decodeBody(contentType: string, body: Buffer): RawBody {
  const [type = '', ...parameters] = contentType.split(';').map((part) => part.trim().toLowerCase());
  const charset = parameters
    .find((parameter) => parameter.startsWith('charset='))
    ?.slice('charset='.length)
    .replace(/"/g, '');
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8')
    throw new HttpFailure(415, 'LT_MALFORMED_INPUT', `charset ${charset} is not supported`, SUPPORTED);
  let text: string;
  try {
    text = UTF8.decode(body); // a leading byte order mark is dropped
  } catch {
    throw new HttpFailure(400, 'LT_MALFORMED_INPUT', 'the body is not valid UTF-8', SUPPORTED);
  }
  return { mediaType: type as IngestMediaType, text };
}

/**
 * The posted records, in order. A JSON body that does not parse, or one with more changes than
 * `maxRecords`, refuses the whole request.
 */
function readItems(body: RawBody, maxRecords: number): Item[] {
  const items = body.mediaType === 'application/x-ndjson' ? ndjsonItems(body.text) : jsonItems(body.text);
  if (items.length === 0)
    throw new HttpFailure(400, 'LT_MALFORMED_INPUT', 'the body holds no changes', 'post at least one change');
  if (items.length > maxRecords) {
    throw new HttpFailure(
      413,
      'LT_MALFORMED_INPUT',
      `the request holds ${items.length} changes; this Agent Node accepts at most ${maxRecords} per request`,
      `split the changes over requests of at most ${maxRecords}`,
    );
  }
  return items;
}

function jsonItems(text: string): Item[] {
  const parsed = parseJson(text);
  if (!parsed.ok) {
    throw new HttpFailure(
      400,
      'LT_MALFORMED_INPUT',
      `the body is not valid JSON: ${parsed.reason} at position ${parsed.position} (line ${parsed.line}, column ${parsed.column})`,
      'send one change object, an array of changes, or { "changes": [...] }',
    );
  }
  const value = parsed.value;
  if (Array.isArray(value)) return value.map((change) => ({ change }));
  if (typeof value === 'object' && value !== null) {
    if (!Object.hasOwn(value, 'changes')) return [{ change: value }];
    const { changes, ...rest } = value as { changes: unknown };
    if (Array.isArray(changes) && Object.keys(rest).length === 0)
      return changes.map((change) => ({ change }));
    throw new HttpFailure(
      400,
      'LT_MALFORMED_INPUT',
      Array.isArray(changes)
        ? `{ "changes": [...] } has other members: ${Object.keys(rest).join(', ')}`
        : '"changes" must be an array of changes',
      'send one change object, an array of changes, or { "changes": [...] }',
    );
  }
  throw new HttpFailure(
    400,
    'LT_MALFORMED_INPUT',
    `the JSON body is ${value === null ? 'null' : `a ${typeof value}`}, not a change, an array of changes or { "changes": [...] }`,
  );
}

/** One record per non-blank line; a line that is not JSON is a refused record, never a dropped one. */
function ndjsonItems(text: string): Item[] {
  const items: Item[] = [];
  text.split('\n').forEach((raw, index) => {
    const content = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
    if (content.trim() === '') return;
    const line = index + 1;
    const parsed = parseJson(content);
    items.push(
      parsed.ok
        ? { change: parsed.value, line }
        : {
            change: null,
            line,
            malformed: `line ${line}: not valid JSON: ${parsed.reason} at column ${parsed.column}`,
          },
    );
  });
  return items;
}

function resultOf(item: Item, index: number, outcome: RecordOutcome | undefined): IngestResult {
  const line = item.line === undefined ? {} : { line: item.line };
  if (item.malformed !== undefined)
    return {
      index,
      ...line,
      status: 'rejected',
      key: null,
      code: 'LT_MALFORMED_INPUT',
      message: item.malformed,
    };
  if (outcome === undefined) throw new Error(`the publisher returned no outcome for record ${index}`);
  if (outcome.status === 'accepted') {
    return {
      index,
      ...line,
      status: 'accepted',
      key: outcome.key,
      version: outcome.version,
      eventId: outcome.eventId,
      ...(outcome.alreadyPublished ? { alreadyPublished: true as const } : {}),
    };
  }
  return {
    index,
    ...line,
    status: 'rejected',
    key: outcome.key,
    code: outcome.code,
    message: outcome.message,
    ...(outcome.lastPublished === undefined ? {} : { lastPublished: outcome.lastPublished }),
  };
}

function countCodes(results: IngestResult[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const result of results) if (result.code) counts[result.code] = (counts[result.code] ?? 0) + 1;
  return counts;
}

/** The HTTP failure an error stands for, or null when it is unexpected (answered 500). */
function asFailure(error: unknown, maxBodyBytes: number): HttpFailure | null {
  if (error instanceof HttpFailure) return error;
  if (error instanceof LtError) {
    if (error.code === 'LT_DATASET_UNKNOWN') {
      // The dictionary's hint lists the known ids; the message carries them so a client sees them at once.
      return new HttpFailure(404, error.code, `${error.message}${error.hint ? `; ${error.hint}` : ''}`);
    }
    const status = STATUS_OF[error.code] ?? (error.retriable ? 503 : 500);
    return new HttpFailure(status, error.code, error.message, error.hint);
  }
  const fastifyCode = (error as { code?: unknown } | null)?.code;
  switch (fastifyCode) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new HttpFailure(
        413,
        'LT_MALFORMED_INPUT',
        `the body is larger than ${maxBodyBytes} bytes, the most this Agent Node accepts`,
        'split the changes over several requests',
      );
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new HttpFailure(415, 'LT_MALFORMED_INPUT', 'unsupported content type', SUPPORTED);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new HttpFailure(
        400,
        'LT_MALFORMED_INPUT',
        'the body is shorter or longer than its Content-Length',
      );
  }
  const status = (error as { statusCode?: unknown } | null)?.statusCode;
  if (typeof status === 'number' && status >= 400 && status < 500)
    return new HttpFailure(status, 'LT_MALFORMED_INPUT', (error as Error).message);
  return null;
}

type JsonParse =
  | { ok: true; value: unknown }
  | { ok: false; reason: string; position: number; line: number; column: number };

/** JSON.parse, and on failure the parser's reason with the 0-based position and 1-based line and column. */
function parseJson(text: string): JsonParse {
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (error) {
    const position = jsonErrorOffset(text) ?? text.length;
    const before = text.slice(0, position);
    const line = before.split('\n').length;
    const column = position - before.lastIndexOf('\n');
    // V8's message may quote the input (personal data): keep the reason, state the token ourselves.
    const message = (error as Error).message.replace(/ in JSON at position \d+[\s\S]*$/, '');
    const found = text.codePointAt(position);
    const reason = message.startsWith('Unexpected token')
      ? `Unexpected token ${JSON.stringify(found === undefined ? '' : String.fromCodePoint(found))}`
      : message;
    return { ok: false, reason, position, line, column };
  }
}

const JSON_WHITESPACE = new Set([' ', '\t', '\n', '\r']);
const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** The first value of an HTTP header. */
function headerValue(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A posted change joined to the request's trace, unless it names a traceId of its own. */
function inTrace(change: unknown, traceId: string): unknown {
  if (change === null || typeof change !== 'object' || Array.isArray(change)) return change;
  return 'traceId' in change ? change : { ...change, traceId };
}

/**
 * The offset of the first character at which `text` stops being one JSON text (RFC 8259), or null when
 * it is one. V8 gives a position for most errors but not all ("Unexpected token"), so it is found here;
 * iterative, so that deep nesting cannot overflow the stack. Grammar:
 *   text   = ws value ws
 *   value  = object | array | string | number | true | false | null
 *   object = "{" ws [ string ws ":" value *( "," ws string ws ":" value ) ] "}"
 *   array  = "[" ws [ value *( "," value ) ] "]"
 */
function jsonErrorOffset(text: string): number | null {
  const stack: ('{' | '[')[] = [];
  let i = 0;
  const skip = (): void => {
    while (i < text.length && JSON_WHITESPACE.has(text[i]!)) i++;
  };
  const string = (): boolean => {
    i++;
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return true;
      }
      if (c < 0x20) return false;
      if (c === 0x5c) {
        const escaped = text[i + 1];
        if (escaped !== undefined && '"\\/bfnrt'.includes(escaped)) {
          i += 2;
          continue;
        }
        if (escaped !== 'u') {
          i++;
          return false;
        }
        for (let k = 2; k < 6; k++) {
          if (!/^[0-9a-fA-F]$/.test(text[i + k] ?? '')) {
            i += k;
            return false;
          }
        }
        i += 6;
        continue;
      }
      i++;
    }
    return false;
  };
  const number = (): boolean => {
    if (text[i] === '-') i++;
    if (text[i] === '0') i++;
    else if (isDigit(text[i])) while (isDigit(text[i])) i++;
    else return false;
    if (text[i] === '.') {
      i++;
      if (!isDigit(text[i])) return false;
      while (isDigit(text[i])) i++;
    }
    if (text[i] === 'e' || text[i] === 'E') {
      i++;
      if (text[i] === '+' || text[i] === '-') i++;
      if (!isDigit(text[i])) return false;
      while (isDigit(text[i])) i++;
    }
    return true;
  };
  const literal = (): boolean => {
    const word = ['true', 'false', 'null'].find((candidate) => candidate[0] === text[i]);
    if (word === undefined) return false;
    for (let k = 0; k < word.length; k++) {
      if (text[i + k] !== word[k]) {
        i += k;
        return false;
      }
    }
    i += word.length;
    return true;
  };
  const member = (): boolean => {
    skip();
    if (text[i] !== '"' || !string()) return false;
    skip();
    if (text[i] !== ':') return false;
    i++;
    return true;
  };
  for (;;) {
    skip();
    const c = text[i];
    if (c === '{') {
      i++;
      skip();
      if (text[i] === '}') i++;
      else {
        stack.push('{');
        if (!member()) return i;
        continue;
      }
    } else if (c === '[') {
      i++;
      skip();
      if (text[i] === ']') i++;
      else {
        stack.push('[');
        continue;
      }
    } else if (c === '"') {
      if (!string()) return i;
    } else if (c === '-' || isDigit(c)) {
      if (!number()) return i;
    } else if (!literal()) return i;
    // after a value: close containers, or take a comma and go on to the next value
    for (;;) {
      skip();
      const top = stack.at(-1);
      if (top === undefined) return i < text.length ? i : null;
      const next = text[i];
      if (next === ',') {
        i++;
        if (top === '{' && !member()) return i;
        break;
      }
      if (next !== (top === '{' ? '}' : ']')) return i;
      i++;
      stack.pop();
    }
  }
}
