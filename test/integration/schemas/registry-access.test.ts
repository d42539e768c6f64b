import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listen } from '../../../infra/http/server.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { caFile, newPassword, readCredential, writeCredential } from '../../../infra/security/principals.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import {
  createRegistryClient,
  lookupDatasetSchemas,
  registerDatasetSchemas,
  registerTopicSchemas,
} from '../../../schemas/registry/client.ts';
import { createRegistryServer, secureRegistryOptions } from '../../../schemas/registry/server.ts';
import { RegistryStore } from '../../../schemas/registry/store.ts';
import { platformFetch, type PlatformFetchInit } from '../../helpers/https.ts';
import { log, testPool } from '../../helpers/services.ts';

const dictionary = loadDictionary();
const citizen = getDataset(dictionary, 'population.citizen'); // owned by BCA

describe('the registry with principals: everyone authenticated, writes per subject, deletes by the publisher', () => {
  const home = mkdtempSync(join(tmpdir(), 'lt-registry-access-'));
  for (const principal of ['agency.BCA', 'agency.BTC', 'lt-registry', 'lt-coordinator'])
    writeCredential(home, { principal, password: newPassword(), issuedAt: new Date().toISOString() });
  const as = (principal: string) => ({
    username: principal,
    password: readCredential(home, principal)!.password,
  });
  const basic = (principal: string) =>
    `Basic ${Buffer.from(`${as(principal).username}:${as(principal).password}`).toString('base64')}`;
  let url = '';
  let ca = '';
  const client = (principal: string) => createRegistryClient({ url, auth: as(principal), ca });
  const fetch = (where: string, init: PlatformFetchInit = {}) => platformFetch(where, { ...init, ca });
  let close: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const { pool } = await testPool();
    await migrate(pool, 'registry');
    // served as `lienthong dictionary serve` serves it: TLS from this home's platform CA, principals' credentials
    const server = createRegistryServer(
      new RegistryStore(pool),
      log,
      secureRegistryOptions(home, '127.0.0.1'),
    );
    ca = readFileSync(caFile(home), 'utf8');
    url = await listen(server);
    close = () => server.close();
  });
  afterAll(async () => {
    await close();
    rmSync(home, { recursive: true, force: true });
  });

  it('answers 401 to a request without credentials or with a wrong password, reads included', async () => {
    // TLS only, with a certificate of the platform CA: a client trusting nothing else, or speaking plaintext, fails
    expect(url).toMatch(/^https:/);
    await expect(platformFetch(`${url}/subjects`)).rejects.toThrow(/certificate/);
    await expect(platformFetch(`${url.replace('https:', 'http:')}/subjects`)).rejects.toThrow();
    await expect(
      createRegistryClient({ url, auth: as('agency.BCA') }).subjectsOfSchema(1),
    ).rejects.toMatchObject({ code: 'LT_REGISTRY_UNREACHABLE' });
    const anonymous = await fetch(`${url}/subjects`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic');
    expect(((await anonymous.json()) as { error_code: number }).error_code).toBe(40101);
    const wrong = await fetch(`${url}/subjects`, {
      headers: { authorization: `Basic ${Buffer.from('agency.BCA:guess').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
  });

  it('lets the dictionary publisher register datasets, the coordinator share subjects, and nobody else', async () => {
    // publishers only look up: before the dictionary is published, even the owner's lookup is refused, retriably
    await expect(lookupDatasetSchemas(client('agency.BCA'), citizen)).rejects.toMatchObject({
      code: 'LT_SCHEMA_NOT_REGISTERED',
      retriable: true,
    });
    // neither the owner agency nor another may register a dataset's schemas: the dictionary is their one author
    await expect(registerDatasetSchemas(client('agency.BCA'), citizen)).rejects.toThrow(/may not/);
    await expect(registerDatasetSchemas(client('agency.BTC'), citizen)).rejects.toThrow(/may not/);
    const registered = await registerDatasetSchemas(client('lt-registry'), citizen);
    expect(registered.valueSchemaId).toBeGreaterThan(0);
    expect(await lookupDatasetSchemas(client('agency.BCA'), citizen)).toEqual(registered);
    // a subject's compatibility is the dictionary's too
    const relaxed = await fetch(`${url}/config/lt.src.population.citizen-value`, {
      method: 'PUT',
      headers: { authorization: basic('agency.BCA'), 'content-type': 'application/json' },
      body: JSON.stringify({ compatibility: 'NONE' }),
    });
    expect(relaxed.status).toBe(403);
    await expect(
      registerTopicSchemas(client('agency.BCA'), 'lt.share.someone-else', citizen, 'NONE'),
    ).rejects.toThrow(/may not/);
    const shared = await registerTopicSchemas(
      client('lt-coordinator'),
      'lt.share.btc-citizen',
      citizen,
      'NONE',
    );
    expect(shared.valueSchemaId).toBeGreaterThan(0);
    // any principal reads, the registry's lookups included
    const reader = client('agency.BTC');
    expect(await reader.subjectsOfSchema(registered.valueSchemaId)).toContain(
      'lt.src.population.citizen-value',
    );
    const subjects = await fetch(`${url}/subjects`, { headers: { authorization: basic('agency.BTC') } });
    expect(await subjects.json()).toContain('lt.share.btc-citizen-value');
  });

  it('lets only the dictionary publisher delete subjects and change the global level (403 otherwise)', async () => {
    const subject = `${url}/subjects/lt.share.btc-citizen-value`;
    const byOwner = await fetch(subject, {
      method: 'DELETE',
      headers: { authorization: basic('agency.BCA') },
    });
    expect([byOwner.status, ((await byOwner.json()) as { error_code: number }).error_code]).toEqual([
      403, 40301,
    ]);
    const global = await fetch(`${url}/config`, {
      method: 'PUT',
      headers: { authorization: basic('lt-coordinator'), 'content-type': 'application/json' },
      body: JSON.stringify({ compatibility: 'NONE' }),
    });
    expect(global.status).toBe(403);
    const byPublisher = await fetch(subject, {
      method: 'DELETE',
      headers: { authorization: basic('lt-registry') },
    });
    expect(byPublisher.status).toBe(200);
  });
});
