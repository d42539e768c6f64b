import type { Admin, Kafka } from 'kafkajs';

/**
 * Reads how many records each of `topics` holds (per partition, high watermark − log start offset, summed),
 * bounded by `timeoutMs`: the source of `lienthong_dlq_depth_records`. One admin connection, made at the first
 * read and kept until `close`. A topic that does not exist yet is left out.
 */
export function deadLetterDepthReader(
  kafka: Kafka,
  topics: () => readonly string[],
  timeoutMs = 2_000,
): { read: () => Promise<Map<string, number>>; close: () => Promise<void> } {
  let admin: Admin | null = null;
  const read = async (): Promise<Map<string, number>> => {
    if (!admin) {
      const made = kafka.admin();
      await made.connect();
      admin = made;
    }
    const connected = admin;
    const depths = new Map<string, number>();
    await Promise.all(
      topics().map(async (topic) => {
        const offsets = await connected.fetchTopicOffsets(topic).catch(() => null);
        if (offsets)
          depths.set(
            topic,
            offsets.reduce((sum, partition) => sum + Number(partition.high) - Number(partition.low), 0),
          );
      }),
    );
    return depths;
  };
  return {
    read: () => {
      let timer: NodeJS.Timeout | undefined;
      return Promise.race([
        read(),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error('timed out')), timeoutMs);
        }),
      ]).finally(() => clearTimeout(timer));
    },
    close: async () => {
      await admin?.disconnect().catch(() => undefined);
      admin = null;
    },
  };
}
