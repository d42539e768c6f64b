import type { IHeaders, Message, TopicMessages } from 'kafkajs';
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
 * The records one batch of a stage refuses, each with its reason, as dead-letter messages by topic
 * ({@link deadLetterTopicOf}). Filled while the batch is worked on; sent before its source offsets are
 * committed, so a refused record is either in a dead-letter topic or read again — never lost.
 */
export class DeadLetters {
  private readonly byTopic = new Map<string, Message[]>();
  private first: Rejection | undefined;
  /** Records refused so far. */
  count = 0;

  add(record: RejectedRecord, rejection: Rejection): void {
    const topic = deadLetterTopicOf(rejection);
    const messages = this.byTopic.get(topic) ?? [];
    messages.push(deadLetterMessage(record, rejection));
    this.byTopic.set(topic, messages);
    this.first ??= rejection;
    this.count++;
  }

  /** The first rejection added (for a log line). */
  get firstRejection(): Rejection | undefined {
    return this.first;
  }

  /** Removes and returns what was added since the last call, by topic: whoever takes them sends them. */
  take(): TopicMessages[] {
    const taken = [...this.byTopic].map(([topic, messages]) => ({ topic, messages }));
    this.byTopic.clear();
    return taken;
  }
}
