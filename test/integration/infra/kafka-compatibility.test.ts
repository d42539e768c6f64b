import { describe, expect, it } from 'vitest';
import { KAFKA_VERSION } from '../../../infra/kafka/local-broker.ts';
import { testKafka, uniqueName } from '../../helpers/services.ts';

// kafkajs 2.2.4 predates Kafka 4 (KIP-896 removed old protocol versions); this proves every call we rely on.
describe(`kafkajs 2.2.4 against the shipped broker (Kafka ${KAFKA_VERSION} when local)`, () => {
  const kafka = testKafka();

  it('creates, lists and deletes topics through the admin client', async () => {
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('compat-admin-');
    await admin.createTopics({ topics: [{ topic, numPartitions: 4 }], waitForLeaders: true });
    expect(await admin.listTopics()).toContain(topic);
    const metadata = await admin.fetchTopicMetadata({ topics: [topic] });
    expect(metadata.topics[0]?.partitions).toHaveLength(4);
    await admin.deleteTopics({ topics: [topic] });
    await expect.poll(async () => admin.listTopics(), { timeout: 10_000 }).not.toContain(topic);
    await admin.disconnect();
  });

  it('produces with acks=all and idempotence, keeping per-key order', async () => {
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('compat-produce-');
    await admin.createTopics({ topics: [{ topic, numPartitions: 3 }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    const messages = Array.from({ length: 300 }, (_, i) => ({ key: `k${i % 7}`, value: String(i) }));
    const acks = await producer.send({ topic, acks: -1, messages });
    expect(acks.every((ack) => ack.errorCode === 0)).toBe(true);
    const offsets = await admin.fetchTopicOffsets(topic);
    expect(offsets.reduce((sum, partition) => sum + Number(partition.high), 0)).toBe(300);
    await producer.disconnect();
    await admin.disconnect();
  });

  it('consumes in a group, commits, and reads and resets group offsets', async () => {
    const admin = kafka.admin();
    await admin.connect();
    const topic = uniqueName('compat-group-');
    const groupId = uniqueName('compat-group-');
    await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
    const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await producer.connect();
    await producer.send({
      topic,
      acks: -1,
      messages: Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: `v${i}` })),
    });

    const consumer = kafka.consumer({ groupId });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    const seen: string[] = [];
    await consumer.run({ eachMessage: async ({ message }) => void seen.push(String(message.value)) });
    await expect.poll(() => seen.length, { timeout: 30_000 }).toBe(50);
    await consumer.stop();
    await consumer.disconnect();

    const [committed] = await admin.fetchOffsets({ groupId, topics: [topic] });
    const total = committed?.partitions.reduce((sum, partition) => sum + Number(partition.offset), 0);
    expect(total).toBe(50);

    await admin.setOffsets({
      groupId,
      topic,
      partitions: [
        { partition: 0, offset: '0' },
        { partition: 1, offset: '0' },
      ],
    });
    const [reset] = await admin.fetchOffsets({ groupId, topics: [topic] });
    expect(reset?.partitions.map((partition) => partition.offset)).toEqual(['0', '0']);
    const groups = await admin.describeGroups([groupId]);
    expect(groups.groups[0]?.groupId).toBe(groupId);

    await producer.disconnect();
    await admin.disconnect();
  });
});
