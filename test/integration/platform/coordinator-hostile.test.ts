import type { IHeaders, KafkaMessage } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopics, waitForGroup } from '../../../infra/kafka/admin.ts';
import { subjects, topics } from '../../../infra/kafka/topics.ts';
import { migrate } from '../../../infra/postgres/migrate.ts';
import type { Agreement } from '../../../platform/agreements/model.ts';
import type { Coordinator } from '../../../platform/coordinator/index.ts';
import type { Publisher } from '../../../producers/publisher/index.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { sampleEnterprises } from '../../../producers/sample/enterprises.ts';
import { COMPATIBILITY, SchemaType } from '@kafkajs/confluent-schema-registry';
import { changeEventSchema } from '../../../schemas/avro/generate.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { registerDatasetSchemas } from '../../../schemas/registry/client.ts';
import { approvedAgreement } from '../../helpers/agreements.ts';
import { testCoordinator } from '../../helpers/coordinator.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import {
  citizenEvent as hostileEvent,
  CUT_HERE,
  cutAndCraft,
  HUGE_ARRAY_BLOCK,
} from '../../helpers/hostile.ts';
import {
  testFetch,
  testKafka,
  testPool,
  testPublisher,
  testRegistry,
  uniqueName,
} from '../../helpers/services.ts';

const header = (headers: IHeaders | undefined, name: string): string | undefined =>
  headers?.[name]?.toString();

describe('the coordinator checks every source record before it shares anything', () => {
  const kafka = testKafka();
  const real = loadDictionary();
  const { dictionary, dataset } = isolatedDataset(real, 'population.citizen');
  const enterprise = isolatedDataset(real, 'business.enterprise').dataset;
  const sourceTopic = topics.source(dataset.id);
  const agreementId = uniqueName('bhxh-');
  // shares no name: what cannot be derived for the first agreement can still be for this one
  const narrowId = uniqueName('btc-');
  const agreements: Agreement[] = [
    approvedAgreement({
      id: agreementId,
      subscriber: 'BHXH',
      dataset: dataset.id,
      fields: ['personal_id', 'full_name'],
      filter: 'true',
    }),
    approvedAgreement({
      id: narrowId,
      subscriber: 'BTC',
      dataset: dataset.id,
      fields: ['personal_id', 'birth_date'],
      filter: 'true',
    }),
  ];
  let registry: Awaited<ReturnType<typeof testRegistry>>;
  let publisher: Publisher;
  let coordinator: Coordinator;

  beforeAll(async () => {
    registry = await testRegistry();
    const { pool } = await testPool();
    await migrate(pool, 'platform');
    await ensureTopics(kafka, [
      { topic: sourceTopic, partitions: 2 },
      { topic: topics.deadLetter('coordinator'), partitions: 1 },
    ]);
    publisher = await testPublisher(registry.client, dictionary, 'BCA');
    await registerDatasetSchemas(registry.client, dataset);
    await registerDatasetSchemas(registry.client, enterprise);
    coordinator = await testCoordinator({
      registry: registry.client,
      dictionary,
      pool,
      loadAgreements: async () => agreements,
    });
  });

  afterAll(async () => {
    await coordinator?.stop();
  });

  /** A well-formed change event of the test's citizen dataset, changed by `overrides` (after: merged). */
  const citizenEvent = (seed: number, overrides: Parameters<typeof hostileEvent>[2]) =>
    hostileEvent(dataset.id, seed, overrides);

  it('dead-letters records of another owner, key, dataset or topic schema, and crafted bytes, with their reasons; none reaches the subscriber, and the valid records after them do', async () => {
    const citizenSchemaId = await registry.client.getLatestSchemaId(subjects.value(sourceTopic));
    const enterpriseSchemaId = await registry.client.getLatestSchemaId(
      subjects.value(topics.source(enterprise.id)),
    );
    const enterpriseRecord = sampleEnterprises(1, 5)[0]!;
    const hostile: { key: string; value: Buffer; code: string; detail: RegExp }[] = [
      {
        key: 'not-the-owner',
        value: await registry.client.encode(citizenSchemaId, citizenEvent(11, { sourceAgency: 'BTC' })),
        code: 'LT_NOT_OWNER',
        detail: /BTC published to .*, whose owner is BCA/,
      },
      {
        key: 'not-its-key',
        value: await registry.client.encode(citizenSchemaId, citizenEvent(12, { key: '079099000123' })),
        code: 'LT_RECORD_INVALID',
        detail: /is not the event key$/,
      },
      {
        key: 'another-dataset',
        value: await registry.client.encode(
          citizenSchemaId,
          citizenEvent(13, { dataset: 'population.other' }),
        ),
        code: 'LT_RECORD_INVALID',
        detail: /event for dataset "population.other"/,
      },
      {
        key: 'another-topics-schema',
        value: await registry.client.encode(enterpriseSchemaId, {
          eventId: '01890a5d-ac96-774b-bcce-b302099a8058',
          dataset: enterprise.id,
          op: 'CREATE',
          key: String(enterpriseRecord.enterprise_code),
          version: 1,
          occurredAt: new Date(),
          sourceAgency: 'BTC',
          traceId: 'hostile',
          after: enterpriseRecord,
        }),
        code: 'LT_SCHEMA_NOT_OF_TOPIC',
        detail: new RegExp(`schema id ${enterpriseSchemaId} is not registered under ${sourceTopic}-value`),
      },
      {
        key: 'huge-count',
        value: cutAndCraft(
          await registry.client.encode(citizenSchemaId, citizenEvent(14, { after: { ethnicity: CUT_HERE } })),
          HUGE_ARRAY_BLOCK,
        ),
        code: 'LT_DECODE_FAILED',
        detail: /after\.nationalities: an array block declares 2147483647 items/,
      },
      {
        key: 'random-bytes',
        value: Buffer.from('d1e5c0ffee', 'hex'),
        code: 'LT_DECODE_FAILED',
        detail: /wire format/,
      },
    ];
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic: sourceTopic,
      acks: -1,
      messages: hostile.map(({ key, value }) => ({ key, value })),
    });
    await producer.disconnect();
    const valid = sampleCitizens(20, 4242);
    await publisher.publishBatch(
      dataset.id,
      valid.map((after) => ({ op: 'CREATE', version: 1, after })),
    );

    expect(await waitForGroup(kafka, coordinator['options'].groupId!, sourceTopic, 30_000)).toBe(0);
    // at least once: a batch read again (a rebalance, or the coordinator's own rewind for a new agreement at start)
    // dead-letters its records again, so each hostile record is counted by its source offset
    expect(coordinator.stats.rejected).toBeGreaterThanOrEqual(hostile.length);

    const dead = await readAll(
      topics.deadLetter('coordinator'),
      (messages) =>
        messages.filter((m) => header(m.headers, 'lt-source-topic') === sourceTopic).length >= hostile.length,
    );
    const once = new Map<string, (typeof dead)[number]>();
    for (const message of dead)
      if (header(message.headers, 'lt-source-topic') === sourceTopic)
        once.set(
          `${header(message.headers, 'lt-source-partition')}:${header(message.headers, 'lt-source-offset')}`,
          message,
        );
    const ours = [...once.values()];
    expect(ours.map((message) => message.key?.toString()).sort()).toEqual(
      hostile.map(({ key }) => key).sort(),
    );
    for (const message of ours) {
      const expected = hostile.find(({ key }) => key === message.key?.toString())!;
      expect(message.value!.equals(expected.value)).toBe(true); // original bytes, unchanged
      expect(header(message.headers, 'lt-error-code'), expected.key).toBe(expected.code);
      expect(header(message.headers, 'lt-error-stage')).toBe('coordinator');
      expect(header(message.headers, 'lt-error-detail'), expected.key).toMatch(expected.detail);
    }

    const shared = await readAll(topics.share(agreementId), (messages) => messages.length >= valid.length);
    const sharedKeys = shared.map((message) => message.key?.toString('latin1') ?? '').join('\n');
    expect(shared).toHaveLength(valid.length);
    for (const citizen of valid) expect(sharedKeys).toContain(String(citizen.personal_id));
    for (const bad of ['079099000123', ...hostile.map(({ key }) => key)])
      expect(sharedKeys).not.toContain(bad);
  });

  it('dead-letters a record that cannot be derived for one agreement for that agreement alone; the others receive it, and the partition goes on', async () => {
    // a source schema version whose full_name is a number: registered under the topic's subject (the
    // registry allows it once the subject's compatibility is NONE), so it decodes, but BHXH's projection
    // (full_name: string) cannot carry it
    const subject = subjects.value(sourceTopic);
    const configured = await testFetch(`${registry.url}/config/${subject}`, {
      method: 'PUT',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({ compatibility: 'NONE' }),
    });
    expect(configured.status).toBe(200);
    const schema = changeEventSchema(dataset) as { fields: { name: string; type: unknown }[] };
    const after = schema.fields.find((field) => field.name === 'after')!;
    const record = (after.type as [string, { fields: { name: string; type: unknown }[] }])[1];
    const variant = {
      ...schema,
      fields: schema.fields.map((field) =>
        field.name !== 'after'
          ? field
          : {
              ...field,
              type: [
                'null',
                {
                  ...record,
                  fields: record.fields.map((inner) =>
                    inner.name === 'full_name' ? { ...inner, type: 'long' } : inner,
                  ),
                },
              ],
            },
      ),
    };
    const { id: variantId } = await registry.client.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(variant) },
      { subject, compatibility: COMPATIBILITY.NONE },
    );
    const odd = citizenEvent(21, { after: { full_name: 12345 } });
    const rejectedBefore = coordinator.stats.rejected;
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic: sourceTopic,
      acks: -1,
      messages: [{ key: odd.key, value: await registry.client.encode(variantId, odd) }],
    });
    await producer.disconnect();
    const next = sampleCitizens(1, 5151)[0]!;
    await publisher.publishBatch(dataset.id, [{ op: 'CREATE', version: 1, after: next }]);

    expect(await waitForGroup(kafka, coordinator['options'].groupId!, sourceTopic, 30_000)).toBe(0);
    expect(coordinator.stats.rejected - rejectedBefore).toBe(1);
    const dead = (
      await readAll(topics.deadLetter('coordinator'), (messages) =>
        messages.some((message) => header(message.headers, 'lt-agreement') === agreementId),
      )
    ).filter((message) => header(message.headers, 'lt-agreement') !== undefined);
    expect(dead).toHaveLength(1);
    expect(header(dead[0]!.headers, 'lt-agreement')).toBe(agreementId);
    expect(header(dead[0]!.headers, 'lt-error-code')).toBe('LT_RECORD_INVALID');
    expect(header(dead[0]!.headers, 'lt-error-detail')).toMatch(
      new RegExp(`cannot be derived for agreement ${agreementId} \\(revision 1\\)`),
    );
    // every record the share topic holds now (before: the reader stopped at its first record, and under load
    // that could come from a partition other than the key's)
    const keysOf = async (id: string) => {
      const topic = topics.share(id);
      const admin = kafka.admin();
      await admin.connect();
      const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
      const total = ends.reduce((sum, { low, high }) => sum + Number(high) - Number(low), 0);
      return (await readAll(topic, (messages) => messages.length >= total)).map((m) =>
        m.key!.toString('latin1'),
      );
    };
    const wide = await keysOf(agreementId);
    expect(wide.some((key) => key.includes(String(next.personal_id)))).toBe(true);
    expect(wide.some((key) => key.includes(odd.key))).toBe(false);
    const narrow = await keysOf(narrowId);
    expect(narrow.some((key) => key.includes(odd.key))).toBe(true);
    expect(narrow.some((key) => key.includes(String(next.personal_id)))).toBe(true);
  });

  /** Every record of `topic` from the start, once `enough` says so. */
  async function readAll(
    topic: string,
    enough: (messages: KafkaMessage[]) => boolean,
  ): Promise<KafkaMessage[]> {
    const consumer = kafka.consumer({ groupId: uniqueName('reader-') });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const messages: KafkaMessage[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
    await expect.poll(() => enough(messages), { timeout: 30_000, interval: 250 }).toBe(true);
    await consumer.disconnect();
    return messages;
  }
});
