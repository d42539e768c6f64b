import { describe, expect, it } from 'vitest';
import { LtError } from '../../../infra/errors.ts';
import { subjects, topics } from '../../../infra/kafka/topics.ts';
import { loadDictionary } from '../../../schemas/model/dictionary.ts';
import { createRegistryClient, registerTopicSchemas } from '../../../schemas/registry/client.ts';
import { decodeWireValue, MAX_VALUE_BYTES } from '../../../schemas/registry/decode.ts';
import { sampleCitizens } from '../../../producers/sample/citizens.ts';
import { isolatedDataset } from '../../helpers/datasets.ts';
import { testRegistry, uniqueName } from '../../helpers/services.ts';

async function failure(promise: Promise<unknown>): Promise<LtError> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof LtError) return error;
    throw error;
  }
  throw new Error('it decoded');
}

describe('decoding untrusted wire-format bytes against the registry', () => {
  const { dataset } = isolatedDataset(loadDictionary(), 'population.citizen');
  const after = sampleCitizens(1, 3)[0]!;
  const event = {
    eventId: '01890a5d-ac96-774b-bcce-b302099a8057',
    dataset: dataset.id,
    op: 'CREATE',
    key: String(after.personal_id),
    version: 1,
    occurredAt: new Date('2026-11-30T00:00:00Z'),
    sourceAgency: 'BCA',
    traceId: 't',
    after,
  };

  it('accepts a schema on a second topic that registered it after the first lookup (agreements with the same fields share one schema)', async () => {
    const { client } = await testRegistry();
    const first = topics.share(uniqueName('first-'));
    const second = topics.share(uniqueName('second-'));
    const { valueSchemaId } = await registerTopicSchemas(client, first, dataset, 'NONE');
    const value = await client.encode(valueSchemaId, event);
    expect(await decodeWireValue(client, value, { subject: subjects.value(first) })).toMatchObject({
      key: event.key,
    });
    expect(await failure(decodeWireValue(client, value, { subject: subjects.value(second) }))).toMatchObject({
      code: 'LT_SCHEMA_NOT_OF_TOPIC',
      retriable: false,
    });
    const again = await registerTopicSchemas(client, second, dataset, 'NONE');
    expect(again.valueSchemaId).toBe(valueSchemaId);
    expect(await decodeWireValue(client, value, { subject: subjects.value(second) })).toMatchObject({
      key: event.key,
    });
  });

  it('tells a record the registry does not know from a registry that does not answer', async () => {
    const { client } = await testRegistry();
    const topic = topics.share(uniqueName('t-'));
    const { valueSchemaId } = await registerTopicSchemas(client, topic, dataset, 'NONE');
    const value = await client.encode(valueSchemaId, event);
    const unknown = Buffer.from(value);
    unknown.writeUInt32BE(987_654, 1);
    expect(await failure(decodeWireValue(client, unknown, { subject: subjects.value(topic) }))).toMatchObject(
      {
        code: 'LT_SCHEMA_UNKNOWN',
        retriable: false,
      },
    );
    const down = createRegistryClient({ url: 'https://127.0.0.1:1' });
    expect(await failure(decodeWireValue(down, value, { subject: subjects.value(topic) }))).toMatchObject({
      code: 'LT_REGISTRY_UNREACHABLE',
      retriable: true,
    });
  });

  it('refuses a value larger than any Agent Node publishes before reading it, whatever it holds', async () => {
    const { client } = await testRegistry();
    const topic = topics.share(uniqueName('big-'));
    const { valueSchemaId } = await registerTopicSchemas(client, topic, dataset, 'NONE');
    // valid Avro of the right schema: only its size is wrong (before: decoded and stored)
    const big = await client.encode(valueSchemaId, {
      ...event,
      after: { ...after, permanent_address: 'x'.repeat(MAX_VALUE_BYTES) },
    });
    expect(await failure(decodeWireValue(client, big, { subject: subjects.value(topic) }))).toMatchObject({
      code: 'LT_RECORD_TOO_LARGE',
      retriable: false,
      message: expect.stringContaining(`at most ${MAX_VALUE_BYTES}`),
    });
    const small = await client.encode(valueSchemaId, event);
    expect(
      await failure(
        decodeWireValue(client, small, { subject: subjects.value(topic), maxBytes: small.length - 1 }),
      ),
    ).toMatchObject({ code: 'LT_RECORD_TOO_LARGE' });
  });
});
