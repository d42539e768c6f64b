import kafkajs, {
  type CompressionTypes,
  type RecordMetadata,
  type IHeaders,
  type Kafka,
  type Message,
  type Producer,
  type TopicMessages,
} from 'kafkajs';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';

// kafkajs is CommonJS: Node's ESM loader does not see this export by name
const keyPartitioner = kafkajs.Partitioners.DefaultPartitioner();

/** Partition counts of topics, read once per topic (a topic's partitions only grow, and only by `topics sync`). */
export class PartitionCounts {
  private readonly known = new Map<string, Promise<number>>();
  private readonly kafka: Kafka;

  constructor(kafka: Kafka) {
    this.kafka = kafka;
  }

  of(topic: string): Promise<number> {
    let count = this.known.get(topic);
    if (!count) {
      count = (async () => {
        const admin = this.kafka.admin();
        await admin.connect();
        try {
          const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
          const partitions = topics[0]?.partitions.length ?? 0;
          if (partitions === 0) throw new Error(`topic ${topic} has no partitions`);
          return partitions;
        } finally {
          await admin.disconnect();
        }
      })();
      count.catch(() => this.known.delete(topic));
      this.known.set(topic, count);
    }
    return count;
  }
}

/**
 * Most bytes of records (keys, values, headers, before compression) one produce request carries. A broker
 * refuses a record batch larger than its `message.max.bytes` (1 MB by default) with MESSAGE_TOO_LARGE, a
 * non-retriable error, and kafkajs does not split batches itself. 900 KiB stays under the default.
 */
export const MAX_REQUEST_BYTES = 900 * 1024;

/** Per-record framing Kafka adds (lengths, offsets delta, timestamp delta, attributes), rounded up. */
const RECORD_OVERHEAD = 32;

function headerBytes(headers: IHeaders | undefined): number {
  let bytes = 0;
  for (const [name, value] of Object.entries(headers ?? {})) {
    for (const one of Array.isArray(value) ? value : [value])
      bytes += name.length + (one === undefined ? 0 : Buffer.byteLength(one));
  }
  return bytes;
}

/** The size of one record as the broker sees it uncompressed, estimated from its parts. */
export function messageBytes(message: Message): number {
  const size = (part: Buffer | string | null | undefined): number =>
    part == null ? 0 : Buffer.byteLength(part);
  return RECORD_OVERHEAD + size(message.key) + size(message.value) + headerBytes(message.headers);
}

/**
 * Splits messages into consecutive requests of at most `maxBytes` each, keeping their order (a record
 * larger than the budget goes alone: the broker decides). Topics keep their own order within each request.
 */
export function chunkTopicMessages(topicMessages: TopicMessages[], maxBytes: number): TopicMessages[][] {
  const requests: TopicMessages[][] = [];
  let current: TopicMessages[] = [];
  let bytes = 0;
  for (const { topic, messages } of topicMessages) {
    for (const message of messages) {
      const size = messageBytes(message);
      if (bytes > 0 && bytes + size > maxBytes) {
        requests.push(current);
        current = [];
        bytes = 0;
      }
      const last = current[current.length - 1];
      if (last?.topic === topic) last.messages.push(message);
      else current.push({ topic, messages: [message] });
      bytes += size;
    }
  }
  if (current.length > 0) requests.push(current);
  return requests;
}

export interface BoundedSend {
  topicMessages: TopicMessages[];
  acks?: number;
  compression?: CompressionTypes;
  /** Default {@link MAX_REQUEST_BYTES}. */
  maxRequestBytes?: number;
  /**
   * With the topics' partition counts, each message's partition is set before sending (as kafkajs's default
   * partitioner would set it, so keys keep their partitions) and every partition must be acknowledged: kafkajs
   * 2.2.4 can resolve a multi-partition send while dropping the records of a partition whose leader moved,
   * during the send, to a broker that had already answered for another partition (tulios/kafkajs#1303, fix
   * proposed in #1798; the fault suite's cluster row lost one partition's share of a batch this way). A missing
   * acknowledgement throws a retriable LT_PUBLISH_FAILED. Give it wherever a broker may fail.
   */
  partitionCounts?: PartitionCounts;
}

/**
 * Produces any number of messages in requests the broker accepts, one after another, so per-partition
 * order holds (with an idempotent producer, also across retries). Resolves once every request is
 * acknowledged; a failure leaves the earlier requests delivered and the caller retries the whole (the
 * records carry their eventIds, so a retry is recognisable downstream).
 */
export async function sendBounded(
  producer: Producer,
  {
    topicMessages,
    acks = -1,
    compression,
    maxRequestBytes = MAX_REQUEST_BYTES,
    partitionCounts,
  }: BoundedSend,
): Promise<void> {
  const placed = partitionCounts ? await place(topicMessages, partitionCounts) : topicMessages;
  for (const request of chunkTopicMessages(placed, maxRequestBytes)) {
    const acknowledged = await producer.sendBatch({
      acks,
      topicMessages: request,
      ...(compression ? { compression } : {}),
    });
    if (partitionCounts) checkAcknowledged(request, acknowledged);
  }
}

/** The messages with their partitions set, as kafkajs's default partitioner would set them. */
async function place(
  topicMessages: TopicMessages[],
  partitionCounts: PartitionCounts,
): Promise<TopicMessages[]> {
  return Promise.all(
    topicMessages.map(async ({ topic, messages }) => {
      const count = await partitionCounts.of(topic);
      const partitionMetadata = Array.from({ length: count }, (_, partitionId) => ({
        partitionId,
        leader: 0,
        partitionErrorCode: 0,
        replicas: [],
        isr: [],
      }));
      return {
        topic,
        messages: messages.map((message) => ({
          ...message,
          partition: keyPartitioner({ topic, partitionMetadata, message }),
        })),
      };
    }),
  );
}

/**
 * Throws (retriably) when kafkajs resolved a send without an acknowledgement for one of its partitions — what
 * tulios/kafkajs#1303 does when a partition's leader moves, during the send, to a broker that had already
 * answered for another partition: the records of that partition were never sent. The caller sends again.
 */
function checkAcknowledged(request: TopicMessages[], acknowledged: RecordMetadata[]): void {
  const answered = new Set(acknowledged.map((meta) => `${meta.topicName}/${meta.partition}`));
  for (const { topic, messages } of request) {
    for (const message of messages) {
      const slot = `${topic}/${message.partition}`;
      if (!answered.has(slot))
        throw new LtError(
          'LT_PUBLISH_FAILED',
          `the broker acknowledged the send but not partition ${slot} (kafkajs lost its records while the ` +
            'partition leader moved, tulios/kafkajs#1303): sending again',
          { details: { partition: slot } },
        );
    }
  }
}

/** Broker errors after which an idempotent producer cannot send again: it must be replaced. */
const PRODUCER_STATE_LOST = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'INVALID_PRODUCER_ID_MAPPING',
]);

/** Whether `error`, or what it wraps (kafkajs retries wrap the last error), is one of PRODUCER_STATE_LOST. */
export function producerStateLost(error: unknown): boolean {
  for (
    let current = error as { type?: string; originalError?: unknown; cause?: unknown } | undefined, depth = 0;
    current && depth < 5;
    depth++
  ) {
    if (PRODUCER_STATE_LOST.has(current.type ?? '')) return true;
    current = (current.originalError ?? current.cause) as typeof current;
  }
  return false;
}

/** Sends with a new producer after the broker refused the old one's sequence numbers, at most this often. */
const REPLACEMENTS_PER_SEND = 3;

/**
 * The one way the platform writes to Kafka where order and acknowledgement matter (the publisher, the
 * coordinator, the sinks' dead letters): an idempotent producer (acks=all, one request in flight, no topic
 * creation) behind {@link sendBounded} with partitions placed and every acknowledgement checked.
 *
 * - One send at a time, and never beside one given up on: kafkajs numbers a partition's records when it sends
 *   them and advances the number only on the acknowledgement, so a send overlapping an unfinished one (a caller
 *   that stopped waiting) can reuse sequence numbers, and the broker then drops its records as duplicates while
 *   acknowledging them.
 * - When a partition leader dies holding records kafkajs had numbered, the broker refuses the producer's next
 *   sequence numbers (OUT_OF_ORDER_SEQUENCE_NUMBER, UNKNOWN_PRODUCER_ID, …), which kafkajs treats as final: that
 *   producer can never send again. It is replaced by a new one (a new producer id) and the whole send is made
 *   again — records already delivered arrive twice, which every reader absorbs (eventIds, version guards).
 *   Should that keep failing, the error thrown is a retriable LT_PUBLISH_FAILED, so a consumer whose batch it
 *   fails is restarted by kafkajs instead of stopping.
 */
export class IdempotentSender {
  private producer: Producer;
  private readonly partitionCounts: PartitionCounts;
  private inFlight: Promise<void> = Promise.resolve();
  private readonly kafka: Kafka;
  private readonly log: Logger;
  /** Producers replaced since start. */
  replacements = 0;
  /** False after a replacement whose connect failed: the next send connects first. */
  private connected = false;

  constructor(kafka: Kafka, log: Logger) {
    this.kafka = kafka;
    this.log = log;
    this.partitionCounts = new PartitionCounts(kafka);
    this.producer = this.newProducer();
  }

  private newProducer(): Producer {
    return this.kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
    this.connected = true;
  }

  /** Waits for the send in progress, then disconnects. */
  async disconnect(): Promise<void> {
    await this.inFlight;
    await this.producer.disconnect();
  }

  /** Resolves once every message is acknowledged; see the class for what happens on the way. */
  send(send: Omit<BoundedSend, 'partitionCounts'>): Promise<void> {
    const sending = this.inFlight.then(() => this.sendReplacing(send));
    this.inFlight = sending.then(
      () => undefined,
      () => undefined,
    );
    return sending;
  }

  private async sendReplacing(send: Omit<BoundedSend, 'partitionCounts'>): Promise<void> {
    if (!this.connected) await this.connect(); // a replacement could not connect (the broker was down)
    for (let replaced = 0; ; replaced++) {
      try {
        await sendBounded(this.producer, { ...send, partitionCounts: this.partitionCounts });
        return;
      } catch (error) {
        if (!producerStateLost(error)) throw error;
        await this.replace(error);
        if (replaced + 1 >= REPLACEMENTS_PER_SEND)
          // no `cause`: kafkajs judges a consumer's failure by its innermost cause, which is final here
          throw new LtError(
            'LT_PUBLISH_FAILED',
            `the broker refused the sequence numbers of ${REPLACEMENTS_PER_SEND} producers in a row: ` +
              `${(error as Error).message}; sending again later`,
          );
      }
    }
  }

  private async replace(cause: unknown): Promise<void> {
    const old = this.producer;
    this.producer = this.newProducer();
    this.connected = false;
    this.replacements++;
    this.log.warn(
      { err: cause },
      'the broker refused the producer’s sequence numbers (a partition leader died during a send); ' +
        'sending again with a new producer',
    );
    await old.disconnect().catch(() => undefined);
    await this.connect();
  }
}
