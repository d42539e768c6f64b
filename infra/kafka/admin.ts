import type { Admin, Kafka } from 'kafkajs';
import { LtError } from '../errors.ts';

export interface TopicSpec {
  topic: string;
  partitions: number;
  /** Broker topic configs, e.g. `{ 'retention.ms': '-1' }`. */
  config?: Record<string, string>;
}

/** Creates the topics that do not exist yet; existing ones are left as they are. */
export async function ensureTopics(kafka: Kafka, specs: TopicSpec[]): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = specs.filter((spec) => !existing.has(spec.topic));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((spec) => ({
          topic: spec.topic,
          numPartitions: spec.partitions,
          replicationFactor: -1,
          configEntries: Object.entries(spec.config ?? {}).map(([name, value]) => ({ name, value })),
        })),
      });
      for (const spec of missing) await untilHosted(admin, spec.topic);
    }
    return missing.map((spec) => spec.topic);
  } finally {
    await admin.disconnect();
  }
}

/** What a leader that has not applied a new topic's metadata yet answers. */
const NOT_SERVED_YET = new Set([
  'UNKNOWN_TOPIC_OR_PARTITION',
  'LEADER_NOT_AVAILABLE',
  'NOT_LEADER_FOR_PARTITION',
  'NOT_LEADER_OR_FOLLOWER',
]);

/** How long a new topic may take to be served by its leaders (KRaft propagates metadata asynchronously). */
const HOSTED_WITHIN_MS = 30_000;

/**
 * Waits until the leaders of a topic just created answer for it. `waitForLeaders` only says the controller chose
 * them; a leader that has not applied the new metadata yet answers UNKNOWN_TOPIC_OR_PARTITION ("does not host
 * this topic-partition") or NOT_LEADER to the first produce or offset request, which a loaded machine makes visible.
 */
async function untilHosted(admin: Admin, topic: string): Promise<void> {
  const deadline = Date.now() + HOSTED_WITHIN_MS;
  for (;;) {
    try {
      await admin.fetchTopicOffsets(topic);
      return;
    } catch (error) {
      let cause: unknown = error; // kafkajs wraps the broker's answer in its retrier's errors
      while (cause instanceof Error && cause.cause !== undefined && !(cause as { type?: string }).type)
        cause = cause.cause;
      const type = (cause as { type?: string }).type;
      if (!NOT_SERVED_YET.has(type ?? '')) throw error;
      if (Date.now() > deadline)
        throw new LtError(
          'LT_KAFKA_UNREACHABLE',
          `topic ${topic} was created but its leaders do not serve it`,
          {
            cause: error,
            hint: 'the brokers are overloaded or their metadata does not propagate: look at the broker log',
          },
        );
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
}

/** Per partition of `topic`: its first and next offsets, and the group's committed offset (-1: none). */
export async function groupPositions(
  kafka: Kafka,
  groupId: string,
  topic: string,
): Promise<{ partition: number; low: number; high: number; committed: number }[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, [committed]] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId, topics: [topic] }),
    ]);
    return ends.map(({ partition, low, high }) => ({
      partition,
      low: Number(low),
      high: Number(high),
      committed: Number(committed?.partitions.find((entry) => entry.partition === partition)?.offset ?? '-1'),
    }));
  } finally {
    await admin.disconnect();
  }
}

/** How many records of `topic` the group has not committed yet (0 when it has read everything). */
export async function groupLag(kafka: Kafka, groupId: string, topic: string): Promise<number> {
  return (await groupPositions(kafka, groupId, topic)).reduce(
    (lag, { low, high, committed }) => lag + Math.max(0, high - (committed < 0 ? low : committed)),
    0,
  );
}

/** Polls {@link groupLag} until it is 0 or the timeout passes; returns the last lag seen. */
export async function waitForGroup(
  kafka: Kafka,
  groupId: string,
  topic: string,
  timeoutMs: number,
  onProgress?: (lag: number) => void,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let lag = await groupLag(kafka, groupId, topic);
  while (lag > 0 && Date.now() < deadline) {
    onProgress?.(lag);
    await new Promise((resolve) => setTimeout(resolve, 250));
    lag = await groupLag(kafka, groupId, topic);
  }
  return lag;
}

/** A partition whose records a consumer group would have read next are gone (retention, deleteRecords). */
export interface LostPosition {
  partition: number;
  /** The group's committed offset (-1: it never committed one). */
  committed: number;
  /** The partition's first offset still held. */
  logStart: number;
}

/**
 * The partitions of `topic` where `groupId` would resume below the log start offset: records it has not read
 * were removed, so continuing "from the earliest remaining" would silently skip them (DESIGN.md §3). A group
 * that never committed counts once records were removed (it would miss them too).
 */
export async function lostPositions(kafka: Kafka, groupId: string, topic: string): Promise<LostPosition[]> {
  return (await groupPositions(kafka, groupId, topic)).flatMap(({ partition, low, committed }) =>
    low > 0 && committed < low ? [{ partition, committed, logStart: low }] : [],
  );
}
