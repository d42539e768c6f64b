import type { CompressionTypes, IHeaders, Message, Producer, TopicMessages } from 'kafkajs';

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
}

/**
 * Produces any number of messages in requests the broker accepts, one after another, so per-partition
 * order holds (with an idempotent producer, also across retries). Resolves once every request is
 * acknowledged; a failure leaves the earlier requests delivered and the caller retries the whole (the
 * records carry their eventIds, so a retry is recognisable downstream).
 */
export async function sendBounded(
  producer: Producer,
  { topicMessages, acks = -1, compression, maxRequestBytes = MAX_REQUEST_BYTES }: BoundedSend,
): Promise<void> {
  for (const request of chunkTopicMessages(topicMessages, maxRequestBytes)) {
    await producer.sendBatch({ acks, topicMessages: request, ...(compression ? { compression } : {}) });
  }
}
