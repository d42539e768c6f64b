import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kafka } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aclKey } from '../../../infra/kafka/acl.ts';
import { createKafka, type KafkaSecurity } from '../../../infra/kafka/client.ts';
import { startLocalCluster, type LocalCluster } from '../../../infra/kafka/local-broker.ts';
import { IdempotentSender } from '../../../infra/kafka/produce.ts';
import { deleteScramPassword, setScramPassword, type ScramTarget } from '../../../infra/kafka/scram.ts';
import { consumerGroups, topics } from '../../../infra/kafka/topics.ts';
import { ensurePlatformCa } from '../../../infra/security/pki.ts';
import { newPassword, principals } from '../../../infra/security/principals.ts';
import { desiredAcls, keepAclsInSync, syncAcls } from '../../../platform/access/plan.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { env, log } from '../../helpers/services.ts';

const dictionary = loadDictionary();
const dataset = 'population.citizen';
const owner = dictionary.datasets.get(dataset)!.owner; // BCA
const hn: Agreement = approvedAgreement({
  id: 'sec-hn',
  subscriber: 'UBND-HN',
  dataset,
  fields: ['personal_id', 'full_name'],
});
const bhxh: Agreement = approvedAgreement({
  id: 'sec-bhxh',
  subscriber: 'BHXH',
  dataset,
  fields: ['personal_id', 'full_name'],
});

/** An error's message with those of its causes (kafkajs wraps the broker's answer). */
function messages(error: unknown): string {
  const parts: string[] = [];
  for (
    let current = error as { message?: string; cause?: unknown; originalError?: unknown } | undefined,
      depth = 0;
    current && depth < 5;
    depth++
  ) {
    parts.push(current.message ?? String(current));
    current = (current.originalError ?? current.cause) as typeof current;
  }
  return parts.join(' ← ');
}

/** Reads `topic` in `groupId` until one record arrives; resolves "read", or the broker's refusal as text. */
async function tryRead(kafka: Kafka, topic: string, groupId: string): Promise<string> {
  const consumer = kafka.consumer({ groupId, allowAutoTopicCreation: false });
  try {
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    return await new Promise<string>((resolve) => {
      // a fresh broker still loading its groups crashes the consumer retriably: kafkajs restarts it
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (!payload.restart || /authoriz/i.test(messages(payload.error)))
          resolve(`refused: ${messages(payload.error)}`);
      });
      void consumer.run({ eachMessage: async () => resolve('read') }).catch((error: Error) => {
        resolve(`refused: ${messages(error)}`);
      });
      setTimeout(() => resolve('nothing arrived'), 30_000);
    });
  } catch (error) {
    return `refused: ${messages(error)}`;
  } finally {
    await consumer.disconnect().catch(() => undefined);
  }
}

/** Produces one record to `topic`; resolves "written", or the broker's refusal as text. */
async function tryWrite(kafka: Kafka, topic: string): Promise<string> {
  const sender = new IdempotentSender(kafka, log);
  try {
    await sender.connect();
    await sender.send({ topicMessages: [{ topic, messages: [{ key: 'k', value: 'v' }] }] });
    return 'written';
  } catch (error) {
    return `refused: ${messages(error)}`;
  } finally {
    await sender.disconnect().catch(() => undefined);
  }
}

describe.each([
  { what: 'a single broker', size: 1 },
  { what: 'a 3-broker cluster', size: 3 },
])('$what with security on: every door refuses whoever has no grant', ({ size }) => {
  let broker: LocalCluster;
  let dataDir: string;
  let admin: KafkaSecurity;
  let scram: ScramTarget;
  const passwords = new Map<string, string>();
  const as = (principal: string, password = passwords.get(principal)!): Kafka =>
    createKafka({
      brokers: broker.brokers,
      clientId: principal,
      log,
      security: { ca: admin.ca, username: principal, password },
      overrides: { retry: { retries: 1, initialRetryTime: 100 } },
    });

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'lt-secure-broker-'));
    broker = await startLocalCluster({ home: env.LIENTHONG_HOME, dataDir, size, secure: true, log });
    admin = broker.admin!;
    scram = { home: env.LIENTHONG_HOME, brokers: broker.brokers, admin, log };
    for (const principal of [
      principals.agency(owner),
      principals.agency('UBND-HN'),
      principals.agency('BHXH'),
      principals.coordinator,
    ]) {
      const password = newPassword();
      setScramPassword(scram, principal, password);
      passwords.set(principal, password);
    }
    const root = createKafka({ brokers: broker.brokers, clientId: 'test-admin', log, security: admin });
    const kafkaAdmin = root.admin();
    await kafkaAdmin.connect();
    await kafkaAdmin.createTopics({
      topics: [
        topics.source(dataset),
        topics.share(hn.id),
        topics.share(bhxh.id),
        topics.deadLetter('sink', 'BHXH'),
      ].map((topic) => ({ topic, numPartitions: 1, replicationFactor: Math.min(3, size) })),
    });
    await kafkaAdmin.disconnect();
    const sync = await syncAcls(root, { dictionary, agreements: [hn, bhxh] });
    expect(sync.changes.every((change) => change.action === 'grant')).toBe(true);
    // something on every topic, so that a permitted read has a record to return
    const coordinator = as(principals.coordinator);
    for (const topic of [topics.share(hn.id), topics.share(bhxh.id)])
      expect(await tryWrite(coordinator, topic)).toBe('written');
    expect(await tryWrite(as(principals.agency(owner)), topics.source(dataset))).toBe('written');
    expect(await tryWrite(as(principals.agency('BHXH')), topics.deadLetter('sink', 'BHXH'))).toBe('written');
  }, 180_000);

  afterAll(async () => {
    await broker?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses a client without credentials, with a wrong password, or trusting another CA', async () => {
    const plaintext = createKafka({
      brokers: broker.brokers,
      clientId: 'anonymous',
      log,
      overrides: { retry: { retries: 0 } },
    });
    const anonymous = plaintext.admin();
    await expect(anonymous.connect().then(() => anonymous.listTopics())).rejects.toThrow();
    await anonymous.disconnect().catch(() => undefined);

    const wrong = as(principals.agency('UBND-HN'), newPassword()).admin();
    await expect(wrong.connect()).rejects.toThrow(/authentication failed/i);

    const otherHome = mkdtempSync(join(tmpdir(), 'lt-other-ca-'));
    const otherCa = ensurePlatformCa(otherHome);
    const impostor = createKafka({
      brokers: broker.brokers,
      clientId: 'other-ca',
      log,
      security: { ...admin, ca: otherCa.certPem },
      overrides: { retry: { retries: 0 } },
    }).admin();
    await expect(impostor.connect()).rejects.toThrow(/certificate/i);
    rmSync(otherHome, { recursive: true, force: true });
  }, 60_000);

  it('lets only the owner write a source topic, and only the coordinator write a share topic', async () => {
    expect(await tryWrite(as(principals.agency('UBND-HN')), topics.source(dataset))).toMatch(
      /^refused: .*authoriz/i,
    );
    // no forged record — a purge or revision control record included — can reach a subscriber
    expect(await tryWrite(as(principals.agency('UBND-HN')), topics.share(hn.id))).toMatch(
      /^refused: .*authoriz/i,
    );
    expect(await tryWrite(as(principals.agency(owner)), topics.share(hn.id))).toMatch(
      /^refused: .*authoriz/i,
    );
  }, 60_000);

  it('lets a subscriber read its own share topic in its own groups, and nothing else', async () => {
    const subscriber = as(principals.agency('UBND-HN'));
    const ownGroup = consumerGroups.subscription('UBND-HN', hn.id);
    expect(await tryRead(subscriber, topics.share(hn.id), ownGroup)).toBe('read');
    expect(await tryRead(subscriber, topics.share(bhxh.id), ownGroup)).toMatch(/^refused: .*authoriz/i);
    expect(await tryRead(subscriber, topics.source(dataset), ownGroup)).toMatch(/^refused: .*authoriz/i);
    expect(await tryRead(subscriber, topics.deadLetter('sink', 'BHXH'), ownGroup)).toMatch(
      /^refused: .*authoriz/i,
    );
    // kafkajs reports the broker's GROUP_AUTHORIZATION_FAILED to FindCoordinator as "Failed to find group
    // coordinator"; the group's own agency, just below, uses it
    const othersGroup = consumerGroups.subscription('BHXH', bhxh.id);
    expect(await tryRead(subscriber, topics.share(hn.id), othersGroup)).toMatch(
      /^refused: .*(authoriz|Failed to find group coordinator)/i,
    );
    expect(await tryRead(as(principals.agency('BHXH')), topics.share(bhxh.id), othersGroup)).toBe('read');
    expect(
      await tryRead(as(principals.agency('BHXH')), topics.deadLetter('sink', 'BHXH'), 'lt.sink.bhxh.dlq'),
    ).toBe('read');
  }, 180_000);

  it('takes the read away when the agreement is revoked; a second sync changes nothing', async () => {
    const root = createKafka({ brokers: broker.brokers, clientId: 'test-admin', log, security: admin });
    const revoked: Agreement = { ...hn, status: 'revoked', statusReason: 'test' };
    const dry = await syncAcls(root, { dictionary, agreements: [revoked, bhxh] }, { dryRun: true });
    expect(dry.changes.map((change) => `${change.action} ${aclKey(change.acl)}`)).toEqual([
      `revoke User:agency.UBND-HN READ TOPIC:${topics.share(hn.id)}`,
    ]);
    const subscriber = as(principals.agency('UBND-HN'));
    const group = `${consumerGroups.subscription('UBND-HN', hn.id)}.after`;
    expect(await tryRead(subscriber, topics.share(hn.id), group)).toBe('read'); // a dry run changed nothing
    await syncAcls(root, { dictionary, agreements: [revoked, bhxh] });
    expect(await tryRead(subscriber, topics.share(hn.id), `${group}.2`)).toMatch(/^refused: .*authoriz/i);
    expect((await syncAcls(root, { dictionary, agreements: [revoked, bhxh] })).changes).toEqual([]);
    expect(desiredAcls({ dictionary, agreements: [revoked, bhxh] }).length).toBeGreaterThan(0);
  }, 180_000);

  it('keeps the ACLs in sync by itself: a consumer reading when its agreement is revoked is refused within seconds', async () => {
    const root = createKafka({ brokers: broker.brokers, clientId: 'test-keeper', log, security: admin });
    let agreements: Agreement[] = [hn, bhxh]; // what the agreement store says, changed below
    const keeper = keepAclsInSync(root, async () => ({ dictionary, agreements }), { intervalMs: 1_000, log });
    const consumer = as(principals.agency('UBND-HN')).consumer({
      groupId: `${consumerGroups.subscription('UBND-HN', hn.id)}.live`,
      allowAutoTopicCreation: false,
    });
    try {
      const refused = new Promise<string>((resolve) =>
        consumer.on(consumer.events.CRASH, ({ payload }) => {
          if (/authoriz/i.test(messages(payload.error))) resolve(messages(payload.error));
        }),
      );
      let read = 0;
      // the keeper granted the read again (the test before revoked it): the consumer reads
      await expect
        .poll(
          async () => {
            await consumer.connect();
            await consumer.subscribe({ topic: topics.share(hn.id), fromBeginning: true });
            await consumer.run({ eachMessage: async () => void read++ });
            return true;
          },
          { timeout: 30_000, interval: 1_000 },
        )
        .toBe(true);
      await expect.poll(() => read, { timeout: 30_000 }).toBeGreaterThan(0);
      const revokedAt = Date.now();
      agreements = [{ ...hn, status: 'revoked', statusReason: 'test' }, bhxh];
      await tryWrite(as(principals.coordinator), topics.share(hn.id)); // something more to fetch
      expect(await refused).toMatch(/authoriz/i);
      expect(Date.now() - revokedAt).toBeLessThan(30_000);
    } finally {
      await consumer.disconnect().catch(() => undefined);
      await keeper.stop();
    }
  }, 120_000);

  it('refuses an old password after rotation, and every password after revocation', async () => {
    const principal = principals.agency('BHXH');
    const old = passwords.get(principal)!;
    const rotated = newPassword();
    setScramPassword(scram, principal, rotated);
    await expect(as(principal, old).admin().connect()).rejects.toThrow(/authentication failed/i);
    const fresh = as(principal, rotated).admin();
    await fresh.connect();
    await fresh.disconnect();
    deleteScramPassword(scram, principal);
    await expect(as(principal, rotated).admin().connect()).rejects.toThrow(/authentication failed/i);
  }, 120_000);
});
