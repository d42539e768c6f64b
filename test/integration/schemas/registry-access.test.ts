import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsUnder } from '../../../infra/http/principal-auth.ts';
import { listen } from '../../../infra/http/server.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import { newPassword, readCredential, writeCredential } from '../../../infra/security/principals.ts';
import { getDataset, loadDictionary } from '../../../schemas/model/dictionary.ts';
import { registryAccess } from '../../../schemas/registry/access.ts';
import {
  createRegistryClient,
  registerDatasetSchemas,
  registerTopicSchemas,
} from '../../../schemas/registry/client.ts';
import { createRegistryServer } from '../../../schemas/registry/server.ts';
import { RegistryStore } from '../../../schemas/registry/store.ts';
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
  let close: () => Promise<void> = async () => undefined;

  beforeAll(async () => {
    const { pool } = await testPool();
    await migrate(pool, 'registry');
    const server = createRegistryServer(
      new RegistryStore(pool),
      log,
      registryAccess(dictionary, credentialsUnder(home)),
    );
    url = await listen(server);
    close = () => server.close();
  });
  afterAll(async () => {
    await close();
    rmSync(home, { recursive: true, force: true });
  });

  it('answers 401 to a request without credentials or with a wrong password, reads included', async () => {
    const anonymous = await fetch(`${url}/subjects`);
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('www-authenticate')).toContain('Basic');
    expect(((await anonymous.json()) as { error_code: number }).error_code).toBe(40101);
    const wrong = await fetch(`${url}/subjects`, {
      headers: { authorization: `Basic ${Buffer.from('agency.BCA:guess').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
  });

  it('lets the owner register its dataset, the coordinator share subjects, and nobody else', async () => {
    const registered = await registerDatasetSchemas(createRegistryClient(url, as('agency.BCA')), citizen);
    expect(registered.valueSchemaId).toBeGreaterThan(0);
    // BTC does not own population.citizen: it may not register (nor re-register) its subjects
    await expect(
      registerDatasetSchemas(createRegistryClient(url, as('agency.BTC')), citizen),
    ).rejects.toThrow(/may not/);
    await expect(
      registerTopicSchemas(
        createRegistryClient(url, as('agency.BCA')),
        'lt.share.someone-else',
        citizen,
        'NONE',
      ),
    ).rejects.toThrow(/may not/);
    const shared = await registerTopicSchemas(
      createRegistryClient(url, as('lt-coordinator')),
      'lt.share.btc-citizen',
      citizen,
      'NONE',
    );
    expect(shared.valueSchemaId).toBeGreaterThan(0);
    // any principal reads, the registry's lookups included
    const reader = createRegistryClient(url, as('agency.BTC'));
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
