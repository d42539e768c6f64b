import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import {
  AgreementChangesSchema,
  AgreementInputSchema,
  AgreementListQuery,
  AgreementReasonBody,
} from '../platform/agreements/index.ts';
import {
  DatasetParam,
  ErrorResponse,
  GetQuery,
  GetResponse,
  KeyParam,
  SearchBody,
  SearchQuery,
  SearchResponse,
} from '../platform/query/index.ts';
import { IngestQuerySchema } from '../producers/http-ingest/index.ts';
import { ChangeSchema } from '../producers/publisher/index.ts';

/*
 * The OpenAPI 3.1 document of the platform's HTTP APIs — query (method (a)), HTTP ingest, agreements,
 * catalog — generated from the zod schemas the routes validate with (z.toJSONSchema, JSON Schema 2020-12,
 * the dialect of OpenAPI 3.1), so a rule changed in a route changes the document. It lives in cli/ because
 * it spans components of the same layer, which may not import each other.
 */

type JsonSchema = Record<string, unknown>;

/** A request schema as JSON Schema: what the route accepts (zod's input side; a Date is unrepresentable). */
function inputSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any', target: 'draft-2020-12' });
  delete json.$schema;
  return json as JsonSchema;
}

function outputSchema(schema: z.ZodType): JsonSchema {
  const json = z.toJSONSchema(schema, { io: 'output', unrepresentable: 'any', target: 'draft-2020-12' });
  delete json.$schema;
  return json as JsonSchema;
}

/** The query parameters of a zod object, each with its own schema; required unless it may be absent. */
function queryParameters(schema: z.ZodObject): JsonSchema[] {
  return Object.entries(schema.shape).map(([name, field]) => ({
    name,
    in: 'query',
    required: !(field as z.ZodType).safeParse(undefined).success,
    schema: inputSchema(field as z.ZodType),
  }));
}

function pathParameter(name: string, schema: JsonSchema = { type: 'string' }): JsonSchema {
  return { name, in: 'path', required: true, schema };
}

const errorContent = { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } };

function errors(...statuses: number[]): Record<string, JsonSchema> {
  const reasons: Record<number, string> = {
    400: 'malformed input (LT_MALFORMED_INPUT, LT_CURSOR_INVALID)',
    401: 'no or wrong credentials (LT_UNAUTHORIZED)',
    403: 'not allowed (LT_FORBIDDEN, LT_NOT_OWNER)',
    404: 'not found (LT_DATASET_UNKNOWN, LT_QUERY_NOT_FOUND, LT_AGREEMENT_UNKNOWN)',
    409: 'conflict (LT_AGREEMENT_EXISTS, LT_AGREEMENT_TRANSITION)',
    413: 'body too large',
    415: 'unsupported media type',
    422: 'a rule failed (LT_AGREEMENT_INVALID, rejected records)',
    429: 'rate limited (LT_RATE_LIMITED); see Retry-After',
    503: 'a service the API needs is unavailable; retry',
  };
  return Object.fromEntries(
    statuses.map((status) => [
      String(status),
      { description: reasons[status] ?? 'error', content: errorContent },
    ]),
  );
}

function ok(description: string, schema: JsonSchema = { type: 'object' }): JsonSchema {
  return { description, content: { 'application/json': { schema } } };
}

function jsonBody(schema: JsonSchema, required = true): JsonSchema {
  return { required, content: { 'application/json': { schema } } };
}

const basic = [{ basic: [] }];

function agreementStep(step: string, withReason: boolean): JsonSchema {
  return {
    post: {
      tags: ['agreements'],
      summary: `${step} an agreement`,
      security: basic,
      parameters: [pathParameter('id')],
      ...(withReason ? { requestBody: jsonBody(inputSchema(AgreementReasonBody), false) } : {}),
      responses: { '200': ok('the agreement'), ...errors(400, 401, 403, 404, 409, 422) },
    },
  };
}

/** The whole document. */
export function openApiDocument(): JsonSchema {
  const hashHeader = {
    'X-Lienthong-Response-Hash': {
      description:
        'sha256(canonical request ‖ "\\n" ‖ body), hex; the canonical request is described in docs/query.md',
      schema: { type: 'string', pattern: '^[0-9a-f]{64}$' },
    },
  };
  return {
    openapi: '3.1.0',
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    info: {
      title: 'lienthong — Data Sharing and Coordination Platform (Decree 278/2025/ND-CP)',
      version: '1',
      description:
        'Query API (decree method (a), `lienthong query serve`), HTTP ingest (the Agent Node, `lienthong agent`), ' +
        'sharing agreements (`lienthong agreement serve`) and the catalog of the Shared Data Dictionary ' +
        '(`lienthong dictionary serve`). Every service speaks TLS with a certificate of the platform CA.',
    },
    tags: [
      { name: 'query', description: 'decree method (a): docs/query.md' },
      { name: 'ingest', description: 'an agency posts its changes: docs/http-ingest.md' },
      { name: 'agreements', description: 'sharing agreements: docs/agreements.md' },
      { name: 'catalog', description: 'the Shared Data Dictionary: docs/dictionary.md' },
    ],
    components: {
      securitySchemes: {
        basic: {
          type: 'http',
          scheme: 'basic',
          description: 'a principal and its credential (agency.<code>, …)',
        },
        bearer: { type: 'http', scheme: 'bearer', description: 'an ingest token of the Agent Node' },
      },
      schemas: { Error: outputSchema(ErrorResponse) },
    },
    paths: {
      '/v1/query/{dataset}/{key}': {
        get: {
          tags: ['query'],
          summary: 'one record, now or as of a past time, within the caller’s agreement',
          security: basic,
          parameters: [
            pathParameter('dataset', inputSchema(DatasetParam)),
            pathParameter('key', inputSchema(KeyParam)),
            ...queryParameters(GetQuery),
          ],
          responses: {
            '200': { ...ok('the record', outputSchema(GetResponse)), headers: hashHeader },
            ...errors(400, 401, 403, 404, 429, 503),
          },
        },
      },
      '/v1/query/{dataset}': {
        post: {
          tags: ['query'],
          summary: 'a page of records matching a filter, within the caller’s agreement',
          security: basic,
          parameters: [pathParameter('dataset', inputSchema(DatasetParam)), ...queryParameters(SearchQuery)],
          requestBody: jsonBody(inputSchema(SearchBody), false),
          responses: {
            '200': {
              ...ok('a page; `next` is the cursor of the following one', outputSchema(SearchResponse)),
              headers: hashHeader,
            },
            ...errors(400, 401, 403, 404, 413, 415, 429, 503),
          },
        },
      },
      '/v1/openapi.json': {
        get: { tags: ['query'], summary: 'this document', responses: { '200': ok('OpenAPI 3.1') } },
      },
      '/v1/health': {
        get: { tags: ['ingest'], summary: 'the ingest process serves HTTP', responses: { '200': ok('ok') } },
      },
      '/v1/datasets/{id}/changes': {
        post: {
          tags: ['ingest'],
          summary: 'publish changes of a dataset the agency owns; per-record results',
          security: [{ bearer: [] }],
          parameters: [pathParameter('id'), ...queryParameters(IngestQuerySchema)],
          requestBody: {
            required: true,
            content: {
              'application/json': {
                schema: {
                  oneOf: [inputSchema(ChangeSchema), { type: 'array', items: inputSchema(ChangeSchema) }],
                },
              },
              'application/x-ndjson': {
                schema: { type: 'string', description: 'one change (the JSON schema above) per line' },
              },
            },
          },
          responses: {
            '200': ok('every record accepted'),
            ...errors(400, 401, 403, 404, 413, 415, 422, 503),
          },
        },
      },
      '/v1/agreements': {
        get: {
          tags: ['agreements'],
          summary: 'list agreements',
          security: basic,
          parameters: queryParameters(AgreementListQuery),
          responses: { '200': ok('{ agreements }'), ...errors(400, 401) },
        },
        post: {
          tags: ['agreements'],
          summary: 'request an agreement (status requested)',
          security: basic,
          requestBody: jsonBody(inputSchema(AgreementInputSchema)),
          responses: { '201': ok('the agreement'), ...errors(400, 401, 403, 409, 422) },
        },
      },
      '/v1/agreements/{id}': {
        get: {
          tags: ['agreements'],
          summary: 'one agreement, with why its stream is degraded',
          security: basic,
          parameters: [pathParameter('id')],
          responses: { '200': ok('the agreement'), ...errors(401, 404) },
        },
        patch: {
          tags: ['agreements'],
          summary: 'change fields, filter, validTo or methods',
          security: basic,
          parameters: [pathParameter('id')],
          requestBody: jsonBody(inputSchema(AgreementChangesSchema)),
          responses: { '200': ok('the agreement'), ...errors(400, 401, 403, 404, 409, 422) },
        },
      },
      '/v1/agreements/{id}/events': {
        get: {
          tags: ['agreements'],
          summary: 'the agreement’s audit trail',
          security: basic,
          parameters: [pathParameter('id')],
          responses: { '200': ok('{ events }'), ...errors(401, 404) },
        },
      },
      '/v1/agreements/{id}/approve': agreementStep('approve', false),
      '/v1/agreements/{id}/refuse': agreementStep('refuse', true),
      '/v1/agreements/{id}/suspend': agreementStep('suspend', true),
      '/v1/agreements/{id}/resume': agreementStep('resume', false),
      '/v1/agreements/{id}/revoke': agreementStep('revoke', true),
      '/v1/catalog/datasets': {
        get: {
          tags: ['catalog'],
          summary: 'every dataset',
          security: basic,
          responses: { '200': ok('{ datasets }'), ...errors(401) },
        },
      },
      '/v1/catalog/datasets/{id}': {
        get: {
          tags: ['catalog'],
          summary: 'one dataset',
          security: basic,
          parameters: [pathParameter('id')],
          responses: { '200': ok('the dataset'), ...errors(401, 404) },
        },
      },
      '/v1/catalog/agencies': {
        get: {
          tags: ['catalog'],
          summary: 'the agencies',
          security: basic,
          responses: { '200': ok('{ agencies }'), ...errors(401) },
        },
      },
      '/v1/catalog/code-lists/{id}': {
        get: {
          tags: ['catalog'],
          summary: 'one code list',
          security: basic,
          parameters: [pathParameter('id')],
          responses: { '200': ok('the code list'), ...errors(401, 404) },
        },
      },
    },
  };
}

/** Serves the document at `GET /v1/openapi.json` (no authentication: it describes, it holds no data). */
export function registerOpenApiRoute(app: FastifyInstance, document: JsonSchema = openApiDocument()): void {
  const text = JSON.stringify(document);
  app.get('/v1/openapi.json', async (_request, reply) =>
    reply.type('application/json; charset=utf-8').send(text),
  );
}
