import type { Kafka } from 'kafkajs';

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
    }
    return missing.map((spec) => spec.topic);
  } finally {
    await admin.disconnect();
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
