import type { IHeaders, Message, Producer } from 'kafkajs';
import type { Logger } from '../logging/logger.ts';
import { sendBounded } from './produce.ts';
import { topics } from './topics.ts';

/** Where a rejected record was read: a Kafka record, or a row of a table (the outbox relay's input). */
export type RejectedFrom =
  { topic: string; partition: number; offset: string } | { table: string; id: string };

/** Where a rejected record came from and why; becomes the `lt-error-*` headers (DESIGN.md §3). */
export interface Rejection {
  stage: string;
  code: string;
  detail: string;
  source: RejectedFrom;
  /** The agreement the record could not be derived for, when it was refused for one agreement only. */
  agreement?: string;
  /**
   * The agency the rejected record belongs to (a subscriber's sink, an agency's ingest): it goes to that
   * agency's `lt.dlq.<stage>.<agency>`. Unset for the platform's own stages (`lt.dlq.<stage>`).
   */
  owner?: string;
}

/** One rejected record: its original key, value and headers, unchanged. */
export interface RejectedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

/**
 * The dead-letter form of a rejected record (DESIGN.md §3): original key, value and headers unchanged, the
 * reason in `lt-error-code`, `lt-error-stage`, `lt-error-detail`, and where it came from in `lt-source-*`
 * (`-topic`, `-partition`, `-offset` for a Kafka record; `-table`, `-id` for a table row); `lt-agreement` when
 * the record was refused for one agreement only (the others received it).
 * The one place this header contract is written, for every stage.
 */
export function deadLetterMessage(record: RejectedRecord, rejection: Rejection): Message {
  const { source } = rejection;
  const from: IHeaders =
    'table' in source
      ? { 'lt-source-table': source.table, 'lt-source-id': source.id }
      : {
          'lt-source-topic': source.topic,
          'lt-source-partition': String(source.partition),
          'lt-source-offset': source.offset,
        };
  return {
    key: record.key,
    value: record.value,
    headers: {
      ...record.headers,
      'lt-error-code': rejection.code,
      'lt-error-stage': rejection.stage,
      'lt-error-detail': rejection.detail.slice(0, 4_000),
      ...from,
      ...(rejection.agreement === undefined ? {} : { 'lt-agreement': rejection.agreement }),
    },
  };
}

/** Where a rejection is kept: `lt.dlq.<stage>`, or `lt.dlq.<stage>.<agency>` for one agency's records. */
export function deadLetterTopicOf(rejection: Rejection): string {
  return topics.deadLetter(rejection.stage, rejection.owner);
}

/**
 * Writes rejected records to their dead-letter topics ({@link deadLetterTopicOf}) and logs that it did. Awaited before the source offset is
 * committed, so a rejected record is never lost: it is either in the DLQ or read again. No-op when empty.
 */
export async function sendToDeadLetter(
  producer: Producer,
  items: { record: RejectedRecord; rejection: Rejection }[],
  log?: Logger,
): Promise<void> {
  if (items.length === 0) return;
  const byTopic = new Map<string, typeof items>();
  for (const item of items) {
    const topic = deadLetterTopicOf(item.rejection);
    byTopic.set(topic, [...(byTopic.get(topic) ?? []), item]);
  }
  await sendBounded(producer, {
    topicMessages: [...byTopic].map(([topic, batch]) => ({
      topic,
      messages: batch.map(({ record, rejection }) => deadLetterMessage(record, rejection)),
    })),
  });
  log?.warn({ count: items.length, first: items[0]?.rejection }, 'records sent to the dead-letter topic');
}
