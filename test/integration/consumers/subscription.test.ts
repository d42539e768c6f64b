import type avro from 'avsc';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { SupervisedSubscription } from '../../../consumers/subscription/index.ts';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { topics } from '../../../infra/kafka/topics.ts';
import { quoteIdent } from '../../../infra/postgres/pool.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { projectDataset } from '../../../schemas/model/projection.ts';
import { registerTopicSchemas } from '../../../schemas/registry/client.ts';
import { encodeWire } from '../../../schemas/registry/wire.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { log, testKafka, testPool, testRedis, testRegistry, uniqueName } from '../../helpers/services.ts';

describe('an Agent Node subscription that cannot start yet', () => {
  const kafka = testKafka();
  const { dictionary, dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const stops: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const stop of stops) await stop();
  });

  it('is reported and retried, then receives its agreement once the platform has set it up', async () => {
    const registry = await testRegistry();
    const agreement = uniqueName('late-');
    const subscription = new SupervisedSubscription(
      { agreement, dataset: dataset.id },
      {
        kafka,
        registry: registry.client,
        dictionary,
        databaseUrl: inject('services').databaseUrl,
        agency: 'BHXH',
        redis: await testRedis(),
        log,
      },
    );
    stops.push(() => subscription.stop());
    await expect.poll(() => subscription.state.status, { timeout: 10_000 }).toBe('retrying');
    expect(subscription.state).toMatchObject({
      code: 'LT_SCHEMA_UNKNOWN',
      reason: expect.stringContaining(`agreement ${agreement} has no registered share schema`),
      attempts: 1,
    });

    // what the coordinator does when the agreement is approved: the share topic, its schemas, an event
    const shared = projectDataset(dataset, ['personal_id', 'full_name']);
    const topic = topics.share(agreement);
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    const ids = await registerTopicSchemas(registry.client, topic, shared, 'NONE');
    const keyType = (await registry.client.getSchema(ids.keySchemaId)) as unknown as avro.Type;
    const valueType = (await registry.client.getSchema(ids.valueSchemaId)) as unknown as avro.Type;
    const citizen = sampleCitizens(1, 808)[0]!;
    const key = String(citizen.personal_id);
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: [
        {
          key: encodeWire(ids.keySchemaId, keyType, { personal_id: key }),
          value: encodeWire(ids.valueSchemaId, valueType, {
            eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
            dataset: dataset.id,
            op: 'CREATE',
            key,
            version: 1,
            occurredAt: new Date(),
            sourceAgency: 'BCA',
            traceId: 't',
            after: { personal_id: key, full_name: citizen.full_name },
          }),
        },
      ],
    });
    await producer.disconnect();

    const running = await subscription.started;
    expect(subscription.state.status).toBe('running');
    const table = `${quoteIdent(`lt_share_${agreement.replace(/-/g, '_')}`)}.${quoteIdent(running!.sink.table.name)}`;
    const { pool } = await testPool();
    await expect
      .poll(async () => (await pool.query(`SELECT personal_id FROM ${table}`)).rows, { timeout: 30_000 })
      .toEqual([{ personal_id: key }]);
    await subscription.stop();
    expect(subscription.state.status).toBe('stopped');
  }, 60_000);

  it('stops trying when stopped, without ever starting', async () => {
    const registry = await testRegistry();
    const subscription = new SupervisedSubscription(
      { agreement: uniqueName('never-'), dataset: dataset.id },
      {
        kafka,
        registry: registry.client,
        dictionary,
        databaseUrl: inject('services').databaseUrl,
        agency: 'BHXH',
        redis: null,
        log,
      },
    );
    await expect.poll(() => subscription.state.status, { timeout: 10_000 }).toBe('retrying');
    await subscription.stop();
    expect(subscription.state.status).toBe('stopped');
    expect(await subscription.started).toBeNull();
  });
});
