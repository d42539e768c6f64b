import type { IHeaders, Message, Producer } from 'kafkajs';
import type { Logger } from '../logging/logger.ts';
import type { TopicSpec } from './admin.ts';
import { sendBounded } from './produce.ts';
import { topics } from './topics.ts';

/** `lt.dlq.<stage>`: one partition, kept forever — a rejected record is evidence, never expired away. */
export function deadLetterTopic(stage: string): TopicSpec {
  return { topic: topics.deadLetter(stage), partitions: 1, config: { 'retention.ms': '-1' } };
}

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

/**
 * Writes rejected records to `lt.dlq.<stage>` and logs that it did. Awaited before the source offset is
 * committed, so a rejected record is never lost: it is either in the DLQ or read again. No-op when empty.
 */
export async function sendToDeadLetter(
  producer: Producer,
  items: { record: RejectedRecord; rejection: Rejection }[],
  log?: Logger,
): Promise<void> {
  if (items.length === 0) return;
  const byStage = new Map<string, typeof items>();
  for (const item of items)
    byStage.set(item.rejection.stage, [...(byStage.get(item.rejection.stage) ?? []), item]);
  for (const [stage, batch] of byStage) {
    await sendBounded(producer, {
      topicMessages: [
        {
          topic: topics.deadLetter(stage),
          messages: batch.map(({ record, rejection }) => deadLetterMessage(record, rejection)),
        },
      ],
    });
  }
  log?.warn({ count: items.length, first: items[0]?.rejection }, 'records sent to the dead-letter topic');
}
