import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openApiDocument, registerOpenApiRoute } from '../../../cli/openapi.ts';
import { credentialsUnder } from '../../../infra/http/principal-auth.ts';
import { createHttpServer } from '../../../infra/http/server.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { newPassword, writeCredential } from '../../../infra/security/principals.ts';
import { AgreementStore, registerAgreementRoutes } from '../../../platform/agreements/index.ts';
import { Catalog } from '../../../platform/catalog/catalog.ts';
import { registerCatalogRoutes } from '../../../platform/catalog/routes.ts';
import { registerQueryRoutes } from '../../../platform/query/index.ts';
import { createIngestServer } from '../../../producers/http-ingest/index.ts';
import { Publisher, VersionLedger } from '../../../producers/publisher/index.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { createRegistryClient } from '../../../schemas/registry/client.ts';
import { log, testKafka, testPool, testRedis } from '../../helpers/services.ts';

type Json = Record<string, unknown>;
const dictionary = loadDictionary();
const document = openApiDocument() as Json & { paths: Record<string, Record<string, Json>> };
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const home = mkdtempSync(join(tmpdir(), 'lt-openapi-'));
const password = newPassword();
const apps: FastifyInstance[] = [];
const served = new Set<string>();

/** `GET /v1/agreements/{id}` for fastify's `/v1/agreements/:id`. */
function operationOf(method: string, url: string): string {
  return `${method.toLowerCase()} ${url.replace(/:([A-Za-z]+)/g, '{$1}')}`;
}

function collect(app: FastifyInstance): FastifyInstance {
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat())
      if (method !== 'HEAD') served.add(operationOf(method, route.url));
  });
  apps.push(app);
  return app;
}

let query: FastifyInstance;
let agreements: FastifyInstance;
const auth = { authorization: `Basic ${Buffer.from(`agency.UBND-HN:${password}`).toString('base64')}` };

beforeAll(async () => {
  writeCredential(home, { principal: 'agency.UBND-HN', password, issuedAt: new Date().toISOString() });
  const { pool: platform } = await testPool();
  const { pool: ngdb } = await testPool();
  await migrate(platform, 'platform');
  const store = new AgreementStore(platform, dictionary);

  query = collect(createHttpServer(log));
  await registerQueryRoutes(query, {
    ngdb,
    platform,
    agreements: store,
    dictionary,
    check: credentialsUnder(home),
    redis: await testRedis(),
    cursorSecret: randomBytes(32),
  });
  registerOpenApiRoute(query);
  await query.ready();

  agreements = collect(createHttpServer(log));
  registerAgreementRoutes(agreements, store, { check: credentialsUnder(home), dictionary });
  await agreements.ready();

  const catalog = collect(createHttpServer(log));
  registerCatalogRoutes(catalog, new Catalog({ dictionary }), dictionary);
  await catalog.ready();

  // the ingest server registers its routes itself; its publisher is never connected here
  const publisher = new Publisher({
    kafka: testKafka(),
    registry: createRegistryClient({ url: 'https://127.0.0.1:1' }),
    dictionary,
    agency: 'BCA',
    ledger: new VersionLedger(platform),
    log,
  });
  const token = createHash('sha256').update(randomBytes(32).toString('hex')).digest('hex');
  const ingest = createIngestServer({ publisher, tokens: [{ name: 'openapi-test', sha256: token }], log });
  apps.push(ingest);
  await ingest.ready();
  // it registered its routes itself, before a hook could see them: read them back from its route table
  for (const match of ingest.printRoutes({ commonPrefix: false }).matchAll(/(\/\S*) \(([A-Z, ]+)\)/g)) {
    for (const method of match[2]!.split(', '))
      if (method !== 'HEAD') served.add(operationOf(method, match[1]!));
  }
});

afterAll(async () => {
  for (const app of apps) await app.close();
  rmSync(home, { recursive: true, force: true });
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1 with info, paths, and responses on every operation', () => {
    expect(document.openapi).toBe('3.1.0');
    expect(document.info).toMatchObject({ title: expect.any(String), version: expect.any(String) });
    for (const [path, item] of Object.entries(document.paths)) {
      expect(path).toMatch(/^\/v1\//);
      for (const [method, operation] of Object.entries(item)) {
        expect(METHODS).toContain(method);
        expect(Object.keys(operation.responses as Json).length).toBeGreaterThan(0);
        // every path parameter is declared
        const declared = ((operation.parameters ?? []) as { name: string; in: string }[])
          .filter((parameter) => parameter.in === 'path')
          .map((parameter) => parameter.name)
          .sort();
        expect(declared).toEqual([...path.matchAll(/\{(\w+)\}/g)].map((match) => match[1]).sort());
      }
    }
    expect(JSON.stringify(document)).not.toContain('$schema');
  });

  it('documents every route the query, ingest, agreement and catalog servers serve, and no other', () => {
    const documented = new Set(
      Object.entries(document.paths).flatMap(([path, item]) =>
        Object.keys(item).map((method) => `${method} ${path}`),
      ),
    );
    expect(served.size).toBeGreaterThan(15);
    expect([...served].filter((operation) => !documented.has(operation))).toEqual([]);
    expect([...documented].filter((operation) => !served.has(operation))).toEqual([]);
  });

  it('is served at /v1/openapi.json', async () => {
    const response = await query.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(JSON.parse(JSON.stringify(document)));
  });

  /** The properties a JSON body schema documents; fails when it allows others. */
  function documentedProperties(path: string, method: string): string[] {
    const body = document.paths[path]![method]!.requestBody as Json;
    const schema = (body.content as Record<string, { schema: Json }>)['application/json']!.schema;
    expect(schema.additionalProperties).toBe(false);
    return Object.keys(schema.properties as Json);
  }

  it('names exactly the body fields the routes accept (the routes refuse any other, and none documented)', async () => {
    const unrecognized = (body: string) => body.includes('Unrecognized key');
    const search = (payload: Json) =>
      query.inject({
        method: 'POST',
        url: '/v1/query/population.citizen?purpose=openapi',
        headers: { ...auth, 'content-type': 'application/json' },
        payload: JSON.stringify(payload),
      });
    for (const name of documentedProperties('/v1/query/{dataset}', 'post'))
      expect(unrecognized((await search({ [name]: null })).body)).toBe(false);
    expect(unrecognized((await search({ undocumented: 1 })).body)).toBe(true);

    const create = (payload: Json) =>
      agreements.inject({ method: 'POST', url: '/v1/agreements', headers: auth, payload });
    const base = { subscriber: 'UBND-HN', dataset: 'population.citizen' };
    for (const name of documentedProperties('/v1/agreements', 'post'))
      expect(unrecognized((await create({ ...base, [name]: null })).body)).toBe(false);
    expect(unrecognized((await create({ ...base, undocumented: 1 })).body)).toBe(true);
  });

  it('names exactly the query parameters the query routes accept', async () => {
    const parameters = (
      document.paths['/v1/query/{dataset}/{key}']!.get!.parameters as { name: string; in: string }[]
    )
      .filter((parameter) => parameter.in === 'query')
      .map((parameter) => parameter.name);
    expect(parameters).toEqual(expect.arrayContaining(['purpose', 'asOf', 'fields', 'agreement']));
    const get = (query: string) => queryGet(`/v1/query/population.citizen/001090012345?${query}`);
    for (const name of parameters)
      expect((await get(`purpose=p&${name}=x`)).body).not.toContain('Unrecognized key');
    expect((await get('purpose=p&undocumented=x')).body).toContain('Unrecognized key');
  });
});

function queryGet(url: string) {
  return query.inject({ method: 'GET', url, headers: auth });
}
