import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { ensureTopics } from '../../infra/kafka/admin.ts';
import { deadLetterMessage } from '../../infra/kafka/dead-letter.ts';
import { topics } from '../../infra/kafka/topics.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { newPassword, removeCredential, writeCredential } from '../../infra/security/principals.ts';
import { platformFetch } from '../helpers/https.ts';
import {
  childKafkaEnv,
  env,
  kafkaSecurity,
  registryIdentity,
  superUserHeaders,
  testKafka,
  testPool,
  testRegistry,
  uniqueName,
} from '../helpers/services.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CHROMIUM = process.env.LIENTHONG_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(ROOT, 'test-artifacts');
const stops: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const stop of stops.reverse()) await stop();
});

/** Starts `lienthong console` as an operator would; resolves with its URL once it listens. */
async function startConsole(schema: string, registryUrl: string): Promise<string> {
  const child = spawn(
    process.execPath,
    ['cli/lienthong.js', 'console', '--port', '0', '--platform-schema', schema],
    {
      cwd: ROOT,
      env: {
        ...process.env,
        ...childKafkaEnv(),
        DATABASE_URL: inject('services').databaseUrl,
        SCHEMA_REGISTRY_URL: registryUrl, // dead letters are decoded through it
        LOG_LEVEL: 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  stops.push(() => void child.kill('SIGTERM'));
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await expect.poll(() => output, { timeout: 60_000 }).toMatch(/ops console at https:\/\/\S+\//);
  return /ops console at (https:\/\/\S+?)\//.exec(output)![1]!;
}

/** The base64 SHA-256 of the console certificate's public key: the one certificate the browser is told to accept. */
function consoleSpki(): string {
  const pem = readFileSync(join(env.LIENTHONG_HOME, 'security', 'certs', 'lt-console', 'cert.pem'), 'utf8');
  const der = new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(der).digest('base64');
}

describe('the ops console, in a real browser', () => {
  it('shows the live lag of a draining group, drills into a dead letter, and is for operators only', async () => {
    expect(kafkaSecurity, 'the console is tested with security on').toBeDefined();
    const kafka = testKafka();
    const { pool, schema } = await testPool();
    await migrate(pool, 'platform');

    // a subscriber's group with 300 records to read, and one dead letter of our own
    const topic = `lt.share.${uniqueName('console-')}`;
    const group = `lt.sink.${uniqueName('console-')}`;
    await ensureTopics(kafka, [
      { topic, partitions: 1 },
      { topic: topics.deadLetter('coordinator'), partitions: 3 },
    ]);
    const marker = uniqueName('console-dead-');
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
    });
    await producer.send({
      topic: topics.deadLetter('coordinator'),
      messages: [
        deadLetterMessage(
          { key: Buffer.from(marker), value: Buffer.from('these bytes are not Avro') },
          {
            stage: 'coordinator',
            code: 'LT_DECODE_FAILED',
            detail: `the console test's record ${marker} is not in the Confluent wire format`,
            source: { topic, partition: 0, offset: '0' },
          },
        ),
      ],
    });
    await producer.disconnect();
    // the group exists with nothing read yet: its offset committed at the start
    const admin = kafka.admin();
    await admin.connect();
    await admin.setOffsets({ groupId: group, topic, partitions: [{ partition: 0, offset: '0' }] });
    await admin.disconnect();

    const registry = await testRegistry();
    const url = await startConsole(schema, registry.url);

    // outsiders: no credentials 401, an agency 403, both before any data
    const ca = registryIdentity.ca!;
    expect((await platformFetch(`${url}/api/overview`, { ca })).status).toBe(401);
    const agency = { principal: `agency.${uniqueName('T').toUpperCase()}`, password: newPassword() };
    writeCredential(env.LIENTHONG_HOME, { ...agency, issuedAt: new Date().toISOString() });
    stops.push(() => removeCredential(env.LIENTHONG_HOME, agency.principal));
    const asAgency = await platformFetch(`${url}/api/overview`, {
      ca,
      headers: {
        authorization: `Basic ${Buffer.from(`${agency.principal}:${agency.password}`).toString('base64')}`,
      },
    });
    expect(asAgency.status).toBe(403);
    expect(((await asAgency.json()) as { message: string }).message).toContain('for operators');
    const overview = (await (
      await platformFetch(`${url}/api/overview`, { ca, headers: superUserHeaders() })
    ).json()) as {
      groups: { id: string }[] | null;
    };
    expect(overview.groups?.map((g) => g.id)).toContain(group);

    const browser: Browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [`--ignore-certificate-errors-spki-list=${consoleSpki()}`],
    });
    stops.push(() => browser.close());
    const context = await browser.newContext({
      httpCredentials: { username: kafkaSecurity!.username, password: kafkaSecurity!.password },
      viewport: { width: 1280, height: 1400 },
    });
    const page = await context.newPage();
    await page.goto(`${url}/`);
    await expect.poll(() => page.title()).toContain('ops console');
    const lagCell = page.locator('#lag-table tr', { hasText: group }).locator('td[data-key="lag"]');
    await expect.poll(async () => (await lagCell.textContent()) ?? '', { timeout: 30_000 }).toBe('300');

    // the group drains slowly; the page shows its lag going down, then 0
    const reader = kafka.consumer({ groupId: group });
    await reader.connect();
    await reader.subscribe({ topic, fromBeginning: true });
    await reader.run({
      autoCommitInterval: 500,
      eachMessage: async () => new Promise((resolve) => setTimeout(resolve, 40)),
    });
    stops.push(() => reader.disconnect());
    const seen = new Set<number>();
    await expect
      .poll(
        async () => {
          const lag = Number(await lagCell.textContent());
          seen.add(lag);
          return lag;
        },
        { timeout: 60_000, interval: 300 },
      )
      .toBe(0);
    expect(
      [...seen].some((lag) => lag > 0 && lag < 300),
      `lags seen: ${[...seen].join(', ')}`,
    ).toBe(true);
    expect(await page.locator(`#lag-chart polyline[data-group="${group}"]`).count()).toBe(1);

    // dead letters: the topic's count, its records, ours with its reason
    await page.locator('#dlq-table tr', { hasText: topics.deadLetter('coordinator') }).click();
    const ours = page
      .locator('#dlq-records-table tr', { hasText: 'LT_DECODE_FAILED' })
      .filter({ hasText: marker });
    await ours.first().click();
    await expect
      .poll(async () => (await page.locator('#dlq-record-reason').textContent()) ?? '', { timeout: 15_000 })
      .toContain(`the console test's record ${marker} is not in the Confluent wire format`);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'console.png'), fullPage: true });
  });
});
