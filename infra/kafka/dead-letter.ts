import type { IHeaders, Producer } from 'kafkajs';
import { topics } from '../../infra/kafka/topics.ts';

/** Where a rejected record came from and why; becomes the `lt-error-*` headers (DESIGN.md §3). */
export interface Rejection {
  stage: string;
  code: string;
  detail: string;
  source: { topic: string; partition: number; offset: string };
}

/** One rejected record: its original key, value and headers, unchanged. */
export interface RejectedRecord {
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

/**
 * Writes rejected records to `lt.dlq.<stage>` with the reason in headers. Awaited before the source offset
 * is committed, so a rejected record is never lost: it is either in the DLQ or read again.
 */
export async function sendToDeadLetter(
  producer: Producer,
  items: { record: RejectedRecord; rejection: Rejection }[],
): Promise<void> {
  const byStage = new Map<string, typeof items>();
  for (const item of items)
    byStage.set(item.rejection.stage, [...(byStage.get(item.rejection.stage) ?? []), item]);
  for (const [stage, batch] of byStage) {
    await producer.send({
      topic: topics.deadLetter(stage),
      acks: -1,
      messages: batch.map(({ record, rejection }) => ({
        key: record.key,
        value: record.value,
        headers: {
          ...record.headers,
          'lt-error-code': rejection.code,
          'lt-error-stage': rejection.stage,
          'lt-error-detail': rejection.detail.slice(0, 4_000),
          'lt-source-topic': rejection.source.topic,
          'lt-source-partition': String(rejection.source.partition),
          'lt-source-offset': rejection.source.offset,
        },
      })),
    });
  }
}
