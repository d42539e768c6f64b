import { randomUUID } from 'node:crypto';
import type { IHeaders, Kafka } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { consumerGroups } from '../../infra/kafka/topics.ts';
import type { DeadLetterRecord } from './dead-letter.ts';

/** How long reading the dead-letter topics may take before it is given up. Default 60 s. */
export const DEFAULT_READ_TIMEOUT_MS = 60_000;

/**
 * Every record the given dead-letter topics hold now (from each partition's log start to its end when the read
 * began), in a one-off consumer group `lt.operator.<id>` that never commits: nothing is left behind, no stage's
 * position moves. Bounded by the topics' retention (LIENTHONG_DLQ_RETENTION_DAYS).
 */
export async function readDeadLetterRecords(
  kafka: Kafka,
  topicNames: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<DeadLetterRecord[]> {
  if (topicNames.length === 0) return [];
  const ends = new Map<string, bigint>(); // `topic:partition` → offset after the last record
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const topic of topicNames)
      for (const { partition, low, high } of await admin.fetchTopicOffsets(topic))
        if (BigInt(high) > BigInt(low)) ends.set(`${topic}:${partition}`, BigInt(high));
  } finally {
    await admin.disconnect();
  }
  const wanted = [...new Set([...ends.keys()].map((at) => at.slice(0, at.lastIndexOf(':'))))];
  if (wanted.length === 0) return [];

  const records: DeadLetterRecord[] = [];
  const left = new Set(ends.keys());
  const consumer = kafka.consumer({
    groupId: consumerGroups.operatorReader(`dlq-${randomUUID().replace(/-/g, '')}`),
    allowAutoTopicCreation: false,
    maxWaitTimeInMs: 500,
  });
  let finished!: () => void;
  const done = new Promise<void>((resolve) => (finished = resolve));
  let timer: NodeJS.Timeout | undefined;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: wanted, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        const at = `${batch.topic}:${batch.partition}`;
        const end = ends.get(at);
        if (end === undefined) return;
        for (const message of batch.messages) {
          if (BigInt(message.offset) >= end) break;
          records.push({
            topic: batch.topic,
            partition: batch.partition,
            offset: message.offset,
            timestamp: new Date(Number(message.timestamp)),
            key: message.key,
            value: message.value,
            headers: (message.headers ?? {}) as IHeaders,
          });
        }
        if (BigInt(batch.lastOffset()) + 1n >= end) left.delete(at);
        if (left.size === 0) finished();
      },
    });
    const timeoutMs = options.timeoutMs ?? DEFAULT_READ_TIMEOUT_MS;
    const timedOut = new Promise<'timeout'>(
      (resolve) => (timer = setTimeout(() => resolve('timeout'), timeoutMs)),
    );
    if ((await Promise.race([done, timedOut])) === 'timeout')
      throw new LtError(
        'LT_KAFKA_UNREACHABLE',
        `the dead-letter topics were not read within ${timeoutMs / 1000} s`,
        {
          details: { unread: [...left] },
          hint: 'check that the broker is up and that this principal may read lt.dlq.* in groups lt.operator.* (lienthong acl sync)',
        },
      );
  } finally {
    clearTimeout(timer);
    await consumer.disconnect();
  }
  return records.sort(
    (a, b) =>
      a.topic.localeCompare(b.topic) ||
      a.partition - b.partition ||
      Number(BigInt(a.offset) - BigInt(b.offset)),
  );
}

/** Records, log start and end of every partition of the given topics: what is kept now. */
export async function deadLetterOffsets(
  kafka: Kafka,
  topicNames: readonly string[],
): Promise<{ topic: string; partition: number; low: string; high: string }[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const out: { topic: string; partition: number; low: string; high: string }[] = [];
    for (const topic of topicNames)
      for (const { partition, low, high } of await admin.fetchTopicOffsets(topic))
        out.push({ topic, partition, low, high });
    return out;
  } finally {
    await admin.disconnect();
  }
}

/** The dead-letter topics on the broker now (those this principal may describe). */
export async function existingTopics(kafka: Kafka): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    return await admin.listTopics();
  } finally {
    await admin.disconnect();
  }
}
