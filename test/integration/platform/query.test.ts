import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsUnder } from '../../../infra/http/principal-auth.ts';
import { createHttpServer } from '../../../infra/http/server.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Pool } from '../../../infra/postgres/pool.ts';
import type { Redis } from '../../../infra/redis/client.ts';
import { newPassword, removeCredential, writeCredential } from '../../../infra/security/principals.ts';
import { AgreementStore, type AgreementInput } from '../../../platform/agreements/index.ts';
import {
  registerQueryRoutes,
  responseHash,
  RESPONSE_HASH_HEADER,
  type QueryApiOptions,
} from '../../../platform/query/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import type { DatasetRecord } from '../../../schemas/envelope/change-event.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import type { HistoryTable } from '../../../schemas/postgres/history.ts';
import { createNgdbTables, ngdbEvent, writeNgdb } from '../../helpers/ngdb.ts';
import { log, testPool, testRedis, uniqueName } from '../../helpers/services.ts';

const dictionary = loadDictionary();
const citizenDataset = dictionary.datasets.get('population.citizen')!;
const HOUR = 3_600_000;
const PURPOSE = 'purpose=local%20administrative%20procedures';
// what UBND-HN may see: Hà Nội citizens, four fields (DOMAIN.md's sample, method (a))
const HN_FIELDS = ['personal_id', 'full_name', 'birth_date', 'province_code'];

let platform: Pool;
let ngdb: Pool;
let redis: Redis;
let store: AgreementStore;
let history: HistoryTable;
const home = mkdtempSync(join(tmpdir(), 'lt-query-api-'));
const passwords = new Map<string, string>();
const citizens = sampleCitizens(120, 4242);
const hanoi = citizens.filter((citizen) => citizen.province_code === '01');
const elsewhere = citizens.filter((citizen) => citizen.province_code !== '01');
const ids: Record<string, string> = {};
const apps: FastifyInstance[] = [];

function basic(principal: string, password = passwords.get(principal) ?? 'wrong'): Record<string, string> {
  return { authorization: `Basic ${Buffer.from(`${principal}:${password}`).toString('base64')}` };
}

function agreementFor(subscriber: string, overrides: Partial<AgreementInput> = {}): AgreementInput {
  return {
    id: uniqueName(`q-${subscriber.toLowerCase()}-`).slice(0, 40),
    subscriber,
    dataset: 'population.citizen',
    fields: HN_FIELDS,
    filter: 'province_code == "01"',
    purpose: 'local administrative procedures',
    legalBasis: 'Decree 278/2025/ND-CP, method (a)',
    methods: ['query'],
    ...overrides,
  };
}

async function queryApp(
  options: QueryApiOptions = {},
  counts: Redis = redis,
  now?: () => Date,
): Promise<FastifyInstance> {
  const app = createHttpServer(log);
  await registerQueryRoutes(app, {
    ngdb,
    platform,
    agreements: store,
    dictionary,
    check: credentialsUnder(home),
    redis: counts,
    cursorSecret: randomBytes(32),
    options,
    ...(now ? { now } : {}),
  });
  apps.push(app);
  return app;
}

interface AuditRow {
  caller: string;
  agency: string | null;
  purpose: string | null;
  dataset: string;
  agreement_id: string | null;
  kind: string;
  key: string | null;
  filter: string | null;
  fields: string[] | null;
  result_count: number;
  status: number;
  error_code: string | null;
  response_hash: string | null;
}

async function lastAudit(): Promise<AuditRow> {
  const { rows } = await platform.query<AuditRow>('SELECT * FROM query_audit ORDER BY seq DESC LIMIT 1');
  return rows[0]!;
}

async function auditCount(): Promise<number> {
  const { rows } = await platform.query<{ n: string }>('SELECT count(*) AS n FROM query_audit');
  return Number(rows[0]!.n);
}

/** The refusal's body; asserts it carries no record and no records. */
function refusal(response: { json: () => unknown }): { error: string; message: string; hint?: string } {
  const body = response.json() as Record<string, unknown>;
  expect(body).not.toHaveProperty('record');
  expect(body).not.toHaveProperty('records');
  return body as { error: string; message: string; hint?: string };
}

let app: FastifyInstance;

beforeAll(async () => {
  ({ pool: platform } = await testPool());
  ({ pool: ngdb } = await testPool());
  redis = await testRedis();
  await migrate(platform, 'platform');
  store = new AgreementStore(platform, dictionary);
  for (const principal of ['agency.UBND-HN', 'agency.UBND-HCM', 'agency.BHXH', 'agency.BTC', 'lt-operator']) {
    const password = newPassword();
    passwords.set(principal, password);
    writeCredential(home, { principal, password, issuedAt: new Date().toISOString() });
  }
  history = await createNgdbTables(ngdb, citizenDataset);
  const at = new Date(Date.now() - 10 * HOUR);
  await writeNgdb(
    ngdb,
    history,
    citizens.map((citizen) => ngdbEvent(citizenDataset, String(citizen.personal_id), 1, at, citizen)),
  );

  // UBND-HN: method (a), Hà Nội rows, four fields
  ids.hn = (await store.create(agreementFor('UBND-HN'), 'agency.UBND-HN')).id;
  await store.approve(ids.hn, 'agency.BCA');
  // BHXH: only the stream (b), no query
  ids.bhxh = (await store.create(agreementFor('BHXH', { methods: ['sync'] }), 'agency.BHXH')).id;
  await store.approve(ids.bhxh, 'agency.BCA');
  // UBND-HCM: a query agreement, suspended
  ids.hcm = (
    await store.create(agreementFor('UBND-HCM', { filter: 'province_code == "79"' }), 'agency.UBND-HCM')
  ).id;
  await store.approve(ids.hcm, 'agency.BCA');
  await store.suspend(ids.hcm, 'audit of the commune offices', 'lt-operator');
  // BTC: a query agreement whose validity ended an hour ago (made and approved on a clock three hours back)
  const past = new AgreementStore(platform, dictionary, { now: () => new Date(Date.now() - 3 * HOUR) });
  ids.btc = (
    await past.create(
      agreementFor('BTC', {
        validFrom: new Date(Date.now() - 4 * HOUR),
        validTo: new Date(Date.now() - HOUR),
      }),
      'agency.BTC',
    )
  ).id;
  await past.approve(ids.btc, 'agency.BCA');
  app = await queryApp();
});

afterAll(async () => {
  for (const one of apps) await one.close();
  rmSync(home, { recursive: true, force: true });
});

describe('GET /v1/query/{dataset}/{key}', () => {
  it('answers an agreed record with exactly the agreed fields, its version, source agency and occurredAt, a verifiable hash, and audits it', async () => {
    const citizen = hanoi[0]!;
    const url = `/v1/query/population.citizen/${String(citizen.personal_id)}?${PURPOSE}`;
    const response = await app.inject({ method: 'GET', url, headers: basic('agency.UBND-HN') });
    expect(response.statusCode).toBe(200);
    const body = response.json();
    expect(body).toMatchObject({ dataset: 'population.citizen', agreement: ids.hn, asOf: null });
    expect(body.record).toMatchObject({ key: citizen.personal_id, version: 1, sourceAgency: 'BCA' });
    expect(Object.keys(body.record.data)).toEqual(HN_FIELDS);
    expect(body.record.data).toEqual({
      personal_id: citizen.personal_id,
      full_name: citizen.full_name,
      birth_date: citizen.birth_date,
      province_code: '01',
    });
    expect(new Date(body.record.occurredAt).getTime()).toBeLessThan(Date.now());

    const expected = responseHash(
      {
        method: 'GET',
        path: `/v1/query/population.citizen/${String(citizen.personal_id)}`,
        query: { purpose: 'local administrative procedures' },
        caller: 'agency.UBND-HN',
        body: '',
      },
      response.body,
    );
    expect(response.headers[RESPONSE_HASH_HEADER]).toBe(expected);
    expect(await lastAudit()).toMatchObject({
      caller: 'agency.UBND-HN',
      agency: 'UBND-HN',
      purpose: 'local administrative procedures',
      dataset: 'population.citizen',
      agreement_id: ids.hn,
      kind: 'get',
      key: citizen.personal_id,
      fields: HN_FIELDS,
      result_count: 1,
      status: 200,
      error_code: null,
      response_hash: expected,
    });
  });

  it('answers only the fields asked for, when they are agreed', async () => {
    const citizen = hanoi[1]!;
    const response = await app.inject({
      method: 'GET',
      url: `/v1/query/population.citizen/${String(citizen.personal_id)}?${PURPOSE}&fields=full_name`,
      headers: basic('agency.UBND-HN'),
    });
    expect(response.statusCode).toBe(200);
    expect(response.json().record.data).toEqual({
      personal_id: citizen.personal_id,
      full_name: citizen.full_name,
    });
  });

  it('refuses 403 a field outside the agreement, naming it, and audits the refusal', async () => {
    const before = await auditCount();
    const response = await app.inject({
      method: 'GET',
      url: `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}&fields=full_name,permanent_address`,
      headers: basic('agency.UBND-HN'),
    });
    expect(response.statusCode).toBe(403);
    const body = refusal(response);
    expect(body.error).toBe('LT_FORBIDDEN');
    expect(body.message).toContain('"permanent_address"');
    expect(await auditCount()).toBe(before + 1);
    expect(await lastAudit()).toMatchObject({ status: 403, error_code: 'LT_FORBIDDEN', result_count: 0 });
  });

  it('answers the same 404 for a key outside the agreed rows as for a key that does not exist', async () => {
    const outside = String(elsewhere[0]!.personal_id);
    const missing = '001099999999';
    const ask = (key: string) =>
      app.inject({
        method: 'GET',
        url: `/v1/query/population.citizen/${key}?${PURPOSE}`,
        headers: basic('agency.UBND-HN'),
      });
    const [a, b] = [await ask(outside), await ask(missing)];
    expect([a.statusCode, b.statusCode]).toEqual([404, 404]);
    expect(refusal(a).error).toBe('LT_QUERY_NOT_FOUND');
    expect(a.body.replace(outside, 'KEY')).toBe(b.body.replace(missing, 'KEY'));
    expect(await lastAudit()).toMatchObject({ status: 404, key: missing, error_code: 'LT_QUERY_NOT_FOUND' });
  });

  it('refuses 401 a caller without credentials or with a wrong password, and audits it', async () => {
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    const none = await app.inject({ method: 'GET', url });
    expect(none.statusCode).toBe(401);
    expect(none.headers['www-authenticate']).toContain('Basic');
    expect(refusal(none).error).toBe('LT_UNAUTHORIZED');
    const wrong = await app.inject({ method: 'GET', url, headers: basic('agency.UBND-HN', 'not-it') });
    expect(wrong.statusCode).toBe(401);
    expect(await lastAudit()).toMatchObject({
      caller: 'anonymous',
      status: 401,
      error_code: 'LT_UNAUTHORIZED',
    });
  });

  it('refuses 403 an agency whose agreement does not allow query, a suspended one and an expired one, each with its reason', async () => {
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    const bhxh = await app.inject({ method: 'GET', url, headers: basic('agency.BHXH') });
    expect(bhxh.statusCode).toBe(403);
    expect(refusal(bhxh).message).toContain('no agreement of method query');
    expect(await lastAudit()).toMatchObject({ caller: 'agency.BHXH', status: 403 });

    const hcm = await app.inject({ method: 'GET', url, headers: basic('agency.UBND-HCM') });
    expect(hcm.statusCode).toBe(403);
    expect(refusal(hcm).message).toContain(
      `agreement ${ids.hcm} is suspended (audit of the commune offices)`,
    );

    const btc = await app.inject({ method: 'GET', url, headers: basic('agency.BTC') });
    expect(btc.statusCode).toBe(403);
    expect(refusal(btc).message).toContain(`agreement ${ids.btc} ended at`);

    const operator = await app.inject({ method: 'GET', url, headers: basic('lt-operator') });
    expect(operator.statusCode).toBe(403);
    expect(refusal(operator).message).toContain('only an agency queries');
  });

  it('answers 404 for an unknown dataset, 400 for a malformed key and for a missing purpose, audited', async () => {
    const unknown = await app.inject({
      method: 'GET',
      url: `/v1/query/population.nobody/001099012345?${PURPOSE}`,
      headers: basic('agency.UBND-HN'),
    });
    expect(unknown.statusCode).toBe(404);
    expect(refusal(unknown).error).toBe('LT_DATASET_UNKNOWN');
    const badKey = await app.inject({
      method: 'GET',
      url: `/v1/query/population.citizen/${encodeURIComponent("1' OR '1'='1")}?${PURPOSE}`,
      headers: basic('agency.UBND-HN'),
    });
    expect(badKey.statusCode).toBe(400);
    expect(refusal(badKey).message).toContain('key');
    const noPurpose = await app.inject({
      method: 'GET',
      url: `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}`,
      headers: basic('agency.UBND-HN'),
    });
    expect(noPurpose.statusCode).toBe(400);
    expect(refusal(noPurpose).message).toContain('purpose');
    expect(await lastAudit()).toMatchObject({ purpose: null, status: 400, error_code: 'LT_MALFORMED_INPUT' });
  });
});

describe('POST /v1/query/{dataset}', () => {
  const search = (body: unknown, principal = 'agency.UBND-HN', target = app) =>
    target.inject({
      method: 'POST',
      url: `/v1/query/population.citizen?${PURPOSE}`,
      headers: { ...basic(principal), 'content-type': 'application/json' },
      payload: JSON.stringify(body),
    });

  it('pages through exactly the agreed rows with the cursor, in key order', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const response = await search({ limit: 7, ...(cursor ? { cursor } : {}) });
      expect(response.statusCode).toBe(200);
      const body = response.json();
      for (const record of body.records) {
        expect(Object.keys(record.data)).toEqual(HN_FIELDS);
        seen.push(record.key);
      }
      cursor = body.next;
      pages += 1;
    } while (cursor !== null && pages < 50);
    expect(seen).toEqual(hanoi.map((citizen) => String(citizen.personal_id)).sort());
    expect(pages).toBeGreaterThan(1);
  });

  it('applies the caller’s filter within the agreement, and refuses one on a field outside it (403)', async () => {
    const nguyen = await search({ filter: 'full_name startsWith "Nguyễn"', limit: 1000 });
    expect(nguyen.statusCode).toBe(200);
    const expected = hanoi
      .filter((citizen) => String(citizen.full_name).startsWith('Nguyễn'))
      .map((citizen) => String(citizen.personal_id))
      .sort();
    expect(nguyen.json().records.map((record: { key: string }) => record.key)).toEqual(expected);
    expect(await lastAudit()).toMatchObject({
      kind: 'search',
      filter: 'full_name startsWith "Nguyễn"',
      result_count: expected.length,
    });

    const leak = await search({ filter: 'gender == "F"' });
    expect(leak.statusCode).toBe(403);
    expect(refusal(leak).message).toContain('"gender"');
  });

  it('refuses 400 a malformed filter (with its position), one too deep, a limit over 1000, an unknown body field, a body that is not JSON', async () => {
    const bad = await search({ filter: 'province_code == ' });
    expect(bad.statusCode).toBe(400);
    expect(refusal(bad).message).toContain('the filter is malformed');
    const deep = await search({ filter: `${'not '.repeat(20)}true` });
    expect(deep.statusCode).toBe(400);
    expect(refusal(deep).message).toContain('deeper');
    const many = await search({ limit: 1001 });
    expect(many.statusCode).toBe(400);
    const extra = await search({ sql: 'DROP TABLE agreement' });
    expect(extra.statusCode).toBe(400);
    const notJson = await app.inject({
      method: 'POST',
      url: `/v1/query/population.citizen?${PURPOSE}`,
      headers: { ...basic('agency.UBND-HN'), 'content-type': 'application/json' },
      payload: '{"filter": ',
    });
    expect(notJson.statusCode).toBe(400);
    expect(await lastAudit()).toMatchObject({ status: 400, error_code: 'LT_MALFORMED_INPUT' });
  });

  it('refuses 413 a body over the bound', async () => {
    const response = await search({ filter: `full_name == "${'x'.repeat(20_000)}"` });
    expect(response.statusCode).toBe(413);
    expect(refusal(response).error).toBe('LT_MALFORMED_INPUT');
  });

  it('refuses 400 a cursor of another query (filter, fields) and an altered one', async () => {
    const first = (await search({ limit: 3 })).json();
    expect(first.next).toEqual(expect.any(String));
    const other = await search({ limit: 3, filter: 'full_name startsWith "N"', cursor: first.next });
    expect(other.statusCode).toBe(400);
    expect(refusal(other).error).toBe('LT_CURSOR_INVALID');
    expect(refusal(other).message).toContain('another query');
    const fields = await search({ limit: 3, fields: ['full_name'], cursor: first.next });
    expect(fields.statusCode).toBe(400);
    const [payload, mac] = String(first.next).split('.');
    const altered = Buffer.from(
      Buffer.from(payload!, 'base64url')
        .toString()
        .replace(/"after":"[^"]*"/, '"after":"0"'),
    ).toString('base64url');
    const forged = await search({ limit: 3, cursor: `${altered}.${mac}` });
    expect(forged.statusCode).toBe(400);
    expect(refusal(forged).message).toContain('altered');
    expect(await lastAudit()).toMatchObject({ status: 400, error_code: 'LT_CURSOR_INVALID' });
  });
});

describe('asOf', () => {
  const key = '001090009991';
  const base: DatasetRecord = { ...hanoi[0]!, personal_id: key, birth_date: '1990-02-03', gender: 'M' };
  const t = (hours: number): Date => new Date(Date.parse('2026-03-01T00:00:00Z') + hours * HOUR);

  beforeAll(async () => {
    // three versions and a delete, written out of order (history is by source time, not arrival)
    await writeNgdb(ngdb, history, [
      ngdbEvent(citizenDataset, key, 3, t(3), { ...base, full_name: 'Trần Văn Ba' }),
      ngdbEvent(citizenDataset, key, 1, t(1), { ...base, full_name: 'Trần Văn Một' }),
    ]);
    await writeNgdb(ngdb, history, [
      ngdbEvent(citizenDataset, key, 2, t(2), { ...base, full_name: 'Trần Văn Hai' }),
    ]);
    await writeNgdb(ngdb, history, [ngdbEvent(citizenDataset, key, 4, t(4), null)]);
  });

  const get = (asOf?: Date) =>
    app.inject({
      method: 'GET',
      url: `/v1/query/population.citizen/${key}?${PURPOSE}${asOf ? `&asOf=${encodeURIComponent(asOf.toISOString())}` : ''}`,
      headers: basic('agency.UBND-HN'),
    });

  it('answers each version at its time, and not found before the first and from the delete on', async () => {
    expect((await get(t(0.5))).statusCode).toBe(404);
    for (const [at, version, name] of [
      [t(1), 1, 'Trần Văn Một'],
      [t(1.5), 1, 'Trần Văn Một'],
      [t(2), 2, 'Trần Văn Hai'],
      [t(3.9), 3, 'Trần Văn Ba'],
    ] as const) {
      const response = await get(at);
      expect(response.statusCode).toBe(200);
      expect(response.json().record).toMatchObject({ version, data: { full_name: name } });
      expect(response.json().asOf).toBe(at.toISOString());
    }
    expect((await get(t(4))).statusCode).toBe(404);
    expect((await get(t(100))).statusCode).toBe(404);
    expect((await get()).statusCode).toBe(404); // now: deleted
  });

  it('lists the state at a past time in a search', async () => {
    const response = await app.inject({
      method: 'POST',
      url: `/v1/query/population.citizen?${PURPOSE}`,
      headers: { ...basic('agency.UBND-HN'), 'content-type': 'application/json' },
      payload: JSON.stringify({ asOf: t(2.5).toISOString(), filter: 'full_name startsWith "Trần Văn"' }),
    });
    expect(response.statusCode).toBe(200);
    const records = response.json().records as { key: string; version: number }[];
    expect(records.find((record) => record.key === key)).toMatchObject({ version: 2 });
    // the 120 citizens were written 10 hours ago, after 2026-03-01: none existed yet
    expect(records).toHaveLength(1);
  });
});

describe('rate limits', () => {
  it('answers 429 with Retry-After once an agency used its requests, audits it, and leaves other agencies alone', async () => {
    const counts = await testRedis(); // a count of its own: the other tests' calls are not counted here
    const limited = await queryApp({ rateLimit: 3, rateWindowMs: 60_000 }, counts);
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    for (let i = 0; i < 3; i++) {
      expect(
        (await limited.inject({ method: 'GET', url, headers: basic('agency.UBND-HN') })).statusCode,
      ).toBe(200);
    }
    const refused = await limited.inject({ method: 'GET', url, headers: basic('agency.UBND-HN') });
    expect(refused.statusCode).toBe(429);
    expect(Number(refused.headers['retry-after'])).toBeGreaterThan(0);
    expect(refusal(refused).error).toBe('LT_RATE_LIMITED');
    expect(await lastAudit()).toMatchObject({
      caller: 'agency.UBND-HN',
      status: 429,
      error_code: 'LT_RATE_LIMITED',
    });
    // counted per agency, in Redis
    const other = await limited.inject({ method: 'GET', url, headers: basic('agency.BHXH') });
    expect(other.statusCode).toBe(403);
    const keys = await counts.keys(`${String(counts.options.keyPrefix)}lt-query-rate:*`);
    expect(keys.length).toBeGreaterThan(0);
  });
});

describe('caches of credentials and agreements', () => {
  /** A clock the test moves: both caches count their time on the API's clock. */
  function clock(): { now: () => Date; advance: (ms: number) => void } {
    let at = Date.now();
    return { now: () => new Date(at), advance: (ms) => (at += ms) };
  }

  it('refuses a revoked credential once credentialCacheMs has passed since it was checked, however often it was used meanwhile', async () => {
    const principal = 'agency.UBND-DN';
    const password = newPassword();
    writeCredential(home, { principal, password, issuedAt: new Date().toISOString() });
    const time = clock();
    const cached = await queryApp({ credentialCacheMs: 1_000 }, redis, time.now);
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    const call = () =>
      cached.inject({ method: 'GET', url, headers: basic(principal, password) }).then((r) => r.statusCode);
    expect(await call()).toBe(403); // authenticated: UBND-DN has no query agreement
    removeCredential(home, principal); // lienthong credentials revoke, in another process
    time.advance(600);
    expect(await call()).toBe(403); // still trusted: checked 600 ms ago
    time.advance(600); // 1.2 s after the check; the use at 600 ms did not extend it
    expect(await call()).toBe(401);
    expect(await lastAudit()).toMatchObject({
      caller: 'anonymous',
      status: 401,
      error_code: 'LT_UNAUTHORIZED',
    });
  });

  it('accepts a rotated credential’s new password at once and refuses its old one once credentialCacheMs has passed', async () => {
    const principal = 'agency.UBND-HP';
    const old = newPassword();
    writeCredential(home, { principal, password: old, issuedAt: new Date().toISOString() });
    const time = clock();
    const cached = await queryApp({ credentialCacheMs: 1_000 }, redis, time.now);
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    const call = (password: string) =>
      cached.inject({ method: 'GET', url, headers: basic(principal, password) }).then((r) => r.statusCode);
    expect(await call(old)).toBe(403);
    const rotated = newPassword();
    writeCredential(home, { principal, password: rotated, issuedAt: new Date().toISOString() });
    expect(await call(rotated)).toBe(403); // failures are never cached: the new one works at once
    time.advance(1_001);
    expect(await call(old)).toBe(401);
    expect(await call(rotated)).toBe(403);
  });

  it('stops answering under a suspended agreement once agreementCacheMs has passed, and answers again once it is resumed', async () => {
    const principal = 'agency.BTP';
    const password = newPassword();
    writeCredential(home, { principal, password, issuedAt: new Date().toISOString() });
    passwords.set(principal, password);
    const id = (await store.create(agreementFor('BTP'), principal)).id;
    await store.approve(id, 'agency.BCA');
    const time = clock();
    const cached = await queryApp({ agreementCacheMs: 1_000 }, redis, time.now);
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    const call = () => cached.inject({ method: 'GET', url, headers: basic(principal) });
    expect((await call()).statusCode).toBe(200);
    await store.suspend(id, 'inspection', 'lt-operator');
    time.advance(1_001);
    const refused = await call();
    expect(refused.statusCode).toBe(403);
    expect(refusal(refused).message).toContain(`agreement ${id} is suspended (inspection)`);
    expect(await lastAudit()).toMatchObject({ caller: principal, status: 403, error_code: 'LT_FORBIDDEN' });
    await store.resume(id, 'lt-operator');
    time.advance(1_001);
    expect((await call()).statusCode).toBe(200);
  });

  it('also stops answering under a revoked agreement once agreementCacheMs has passed', async () => {
    const principal = 'agency.BNNMT';
    const password = newPassword();
    writeCredential(home, { principal, password, issuedAt: new Date().toISOString() });
    passwords.set(principal, password);
    const id = (await store.create(agreementFor('BNNMT'), principal)).id;
    await store.approve(id, 'agency.BCA');
    const time = clock();
    const cached = await queryApp({ agreementCacheMs: 1_000 }, redis, time.now);
    const url = `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`;
    const call = () => cached.inject({ method: 'GET', url, headers: basic(principal) });
    expect((await call()).statusCode).toBe(200);
    await store.revoke(id, 'agreement ended by the owner', 'agency.BCA');
    time.advance(1_001);
    const refused = await call();
    expect(refused.statusCode).toBe(403);
    expect(refusal(refused).message).toContain(`agreement ${id} is revoked`);
  });
});

describe('audit', () => {
  it('has an audit row, with its response hash, for every one of many concurrent calls it answered', async () => {
    const concurrent = await queryApp({ auditConcurrency: 2, rateLimit: 100_000 });
    const before = await auditCount();
    const { rows: last } = await platform.query<{ seq: string }>(
      'SELECT coalesce(max(seq), 0) AS seq FROM query_audit',
    );
    const responses = await Promise.all(
      hanoi.concat(elsewhere).map((citizen) =>
        concurrent.inject({
          method: 'GET',
          url: `/v1/query/population.citizen/${String(citizen.personal_id)}?${PURPOSE}`,
          headers: basic('agency.UBND-HN'),
        }),
      ),
    );
    expect(responses.filter((r) => r.statusCode === 200)).toHaveLength(hanoi.length);
    expect(responses.filter((r) => r.statusCode === 404)).toHaveLength(elsewhere.length);
    expect(await auditCount()).toBe(before + citizens.length);
    const hashes = responses.map((r) => String(r.headers[RESPONSE_HASH_HEADER]));
    const { rows } = await platform.query<{ n: string }>(
      'SELECT count(*) AS n FROM query_audit WHERE seq > $1 AND response_hash = ANY($2)',
      [last[0]!.seq, hashes],
    );
    expect(Number(rows[0]!.n)).toBe(citizens.length);
  });

  it('answers 503 and no record when the audit row cannot be written', async () => {
    const { pool: broken } = await testPool(); // a platform schema without query_audit
    const app503 = createHttpServer(log);
    await registerQueryRoutes(app503, {
      ngdb,
      platform: broken,
      agreements: store,
      dictionary,
      check: credentialsUnder(home),
      redis,
      cursorSecret: randomBytes(32),
    });
    apps.push(app503);
    const response = await app503.inject({
      method: 'GET',
      url: `/v1/query/population.citizen/${String(hanoi[0]!.personal_id)}?${PURPOSE}`,
      headers: basic('agency.UBND-HN'),
    });
    expect(response.statusCode).toBe(503);
    expect(refusal(response).error).toBe('LT_POSTGRES_UNREACHABLE');
  });
});
