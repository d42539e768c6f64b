import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { createKafka } from '../../../infra/kafka/client.ts';
import { startLocalBroker } from '../../../infra/kafka/local-broker.ts';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { Publisher } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { LienthongSdk } from '../../../producers/sdk/index.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  env,
  kafkaSecurity,
  log,
  testAgentDb,
  testKafka,
  testRegistry,
  uniqueName,
  publishDictionary,
} from '../../helpers/services.ts';

describe('the TypeScript SDK', () => {
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  // the isolated copy has a generated id; the SDK's types are checked against the real one
  const id = dataset.id as 'population.citizen';
  const closers: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const close of closers) await close();
  });

  async function connect(): Promise<{
    sdk: LienthongSdk;
    registry: Awaited<ReturnType<typeof testRegistry>>;
  }> {
    const registry = await testRegistry();
    await publishDictionary(registry.client, dictionary, 'BCA');
    const services = inject('services');
    await ensureTopics(testKafka(), [{ topic: topics.source(dataset.id), partitions: 3 }]);
    const sdk = await LienthongSdk.connect({
      agency: 'BCA',
      brokers: services.kafkaBrokers,
      ...(kafkaSecurity ? { security: kafkaSecurity } : {}),
      registryUrl: registry.url,
      databaseUrl: services.databaseUrl,
      databaseSchema: uniqueName('t_sdk_'),
      dictionary,
      log,
    });
    closers.push(() => sdk.close());
    return { sdk, registry };
  }

  it('publishes a typed change and answers with its eventId once acknowledged', async () => {
    const { sdk, registry } = await connect();
    const citizen = sampleCitizens(1, 21)[0]!;
    const outcome = await sdk.publish(id, { op: 'CREATE', version: 1, after: citizen as never });
    expect(outcome).toMatchObject({ status: 'accepted', key: citizen.personal_id, version: 1 });
    expect(outcome.eventId).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7/);

    const consumer = testKafka().consumer({ groupId: uniqueName('sdk-') });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.source(dataset.id), fromBeginning: true });
    const seen: unknown[] = [];
    await consumer.run({
      eachMessage: async ({ message }) => void seen.push(await registry.client.decode(message.value!)),
    });
    await expect.poll(() => seen.length, { timeout: 30_000 }).toBe(1);
    await consumer.disconnect();
    expect(seen[0]).toMatchObject({
      eventId: outcome.eventId,
      op: 'CREATE',
      version: 1,
      sourceAgency: 'BCA',
      after: { full_name: citizen.full_name },
    });
  });

  it('throws the refusal with its code: invalid record, stale version, dataset not owned', async () => {
    const { sdk } = await connect();
    const citizen = sampleCitizens(1, 22)[0]!;
    await expect(
      sdk.publish(id, { op: 'CREATE', version: 1, after: { ...citizen, birth_date: '2001-13-01' } as never }),
    ).rejects.toMatchObject({
      code: 'LT_RECORD_INVALID',
      message: expect.stringContaining('birth_date: not a real date'),
    });
    await sdk.publish(id, { op: 'CREATE', version: 5, after: citizen as never });
    await expect(
      sdk.publish(id, { op: 'UPDATE', version: 4, after: citizen as never }),
    ).rejects.toMatchObject({
      code: 'LT_VERSION_STALE',
      message: expect.stringContaining('not higher than the last published version 5'),
    });
    await expect(
      sdk.publish('business.enterprise', { op: 'DELETE', key: '0100233488', version: 1 }),
    ).rejects.toMatchObject({
      code: 'LT_NOT_OWNER',
      message: 'agency BCA does not own business.enterprise (its owner is BTC)',
    });
  });

  it('recognises a retry of an eventId with the same content, and refuses the same eventId with other content', async () => {
    const { sdk } = await connect();
    const [citizen, other] = sampleCitizens(2, 24);
    const eventId = '0190a5b2-7c3d-7e4f-8a1b-2c3d4e5f6a7b';
    const first = await sdk.publish(id, { op: 'CREATE', version: 1, eventId, after: citizen as never });
    expect(first).toMatchObject({ status: 'accepted', eventId });
    expect(first).not.toHaveProperty('alreadyPublished');
    // the same change again (occurredAt and traceId left to default, so they differ): a retry
    const retry = await sdk.publish(id, {
      op: 'CREATE',
      version: 1,
      eventId,
      after: { ...citizen } as never,
    });
    expect(retry).toMatchObject({ status: 'accepted', eventId, alreadyPublished: true });
    // before: accepted, and every sink then dropped it as a duplicate of the first
    const newer = { ...citizen, full_name: 'Nguyễn Văn Khác' };
    await expect(
      sdk.publish(id, { op: 'UPDATE', version: 2, eventId, after: newer as never }),
    ).rejects.toMatchObject({
      code: 'LT_EVENT_ID_REUSED',
      message: expect.stringContaining(
        `was already published for ${dataset.id} key ${String(citizen!.personal_id)} version 1`,
      ),
    });
    await expect(
      sdk.publish(id, { op: 'CREATE', version: 1, eventId, after: other as never }),
    ).rejects.toMatchObject({ code: 'LT_EVENT_ID_REUSED' });

    // the topic holds the first change once, and nothing of the refused ones
    const consumer = testKafka().consumer({ groupId: uniqueName('sdk-reuse-') });
    await consumer.connect();
    await consumer.subscribe({ topic: topics.source(dataset.id), fromBeginning: true });
    const keys: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void keys.push(String(message.key)) });
    await new Promise((resolve) => setTimeout(resolve, 3_000));
    await consumer.disconnect();
    const published = keys.filter(
      (key) => key.includes(String(citizen!.personal_id)) || key.includes(String(other!.personal_id)),
    );
    expect(published).toHaveLength(1);
  });

  it('answers a retriable error within the bounded wait when its broker goes down', async () => {
    // a broker of its own, so that stopping it disturbs no other test
    const broker = await startLocalBroker({
      home: env.LIENTHONG_HOME,
      dataDir: mkdtempSync(join(tmpdir(), 'lt-sdk-broker-')),
      secure: true,
      log,
    });
    closers.push(() => broker.stop());
    const kafka = createKafka({
      brokers: broker.brokers,
      clientId: 'sdk-outage',
      log,
      security: broker.admin!,
      overrides: { retry: { retries: 2, initialRetryTime: 100, maxRetryTime: 500 } },
    });
    await ensureTopics(kafka, [{ topic: topics.source(dataset.id), partitions: 1 }]);
    const registry = await testRegistry();
    await publishDictionary(registry.client, dictionary, 'BCA');
    const { ledger } = await testAgentDb();
    const publisher = new Publisher({
      kafka,
      registry: registry.client,
      dictionary,
      agency: 'BCA',
      ledger,
      log,
      sendTimeoutMs: 2_000,
    });
    await publisher.connect();
    closers.push(() => publisher.close().catch(() => undefined));
    const [first, second] = sampleCitizens(2, 23);
    await publisher.publish(dataset.id, { op: 'CREATE', version: 1, after: first! });

    await broker.stop();
    const started = Date.now();
    const failure = await publisher
      .publish(dataset.id, { op: 'CREATE', version: 1, after: second! })
      .catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'LT_PUBLISH_FAILED', retriable: true });
    expect(Date.now() - started).toBeLessThan(5_000);
    // nothing acknowledged, so nothing recorded: the same change may be retried as it is
    expect(await ledger.lastVersions(dataset.id, [String(second!.personal_id)])).toEqual(new Map());
  });
});
