import type { Kafka } from 'kafkajs';
import { expect } from 'vitest';
import { topics } from '../../infra/kafka/topics.ts';
import { Coordinator, type CoordinatorOptions } from '../../platform/coordinator/index.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import { log, testKafka, uniqueName } from './services.ts';

/**
 * A started coordinator on the test's broker, in a consumer group of its own, re-reading its agreements every
 * 200 ms. The caller stops it (before the sinks and clients it feeds, where that order matters).
 */
export async function testCoordinator(
  options: Pick<CoordinatorOptions, 'registry' | 'dictionary' | 'pool' | 'loadAgreements'> &
    Partial<Pick<CoordinatorOptions, 'groupId'>>,
): Promise<Coordinator> {
  const coordinator = new Coordinator({
    kafka: testKafka(),
    log,
    groupId: uniqueName('lt.coordinator.test-'),
    refreshMs: 200,
    ...options,
  });
  await coordinator.start();
  return coordinator;
}

/** How many records the share topic of `agreementId` holds (0 while the coordinator has not made it). */
export async function shareTopicSize(kafka: Kafka, agreementId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topics.share(agreementId))) return 0;
    const offsets = await admin.fetchTopicOffsets(topics.share(agreementId));
    return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
  } finally {
    await admin.disconnect();
  }
}

/** One share event as {@link readShareTopic} reads it. */
export interface ShareRecord {
  key: string;
  version: number;
  eventId: string;
}

/**
 * Every share event of the agreement's topic up to its end offsets now (key, version and eventId), read by a
 * consumer group of its own; tombstones are skipped.
 */
export async function readShareTopic(
  kafka: Kafka,
  registry: SchemaRegistry,
  agreementId: string,
): Promise<ShareRecord[]> {
  const topic = topics.share(agreementId);
  const admin = kafka.admin();
  await admin.connect();
  const ends = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
  const next = new Map(ends.map(({ partition, low }) => [partition, Number(low)]));
  const consumer = kafka.consumer({ groupId: uniqueName('read-') });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const records: ShareRecord[] = [];
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      next.set(partition, Number(message.offset) + 1);
      if (!message.value) return; // a tombstone
      const event = (await registry.decode(message.value)) as {
        key: string;
        version: number | bigint;
        eventId: string;
      };
      records.push({ key: event.key, version: Number(event.version), eventId: event.eventId });
    },
  });
  await expect
    .poll(() => ends.every(({ partition, high }) => (next.get(partition) ?? 0) >= Number(high)), {
      timeout: 60_000,
      interval: 250,
    })
    .toBe(true);
  await consumer.disconnect();
  return records;
}
