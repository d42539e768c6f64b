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
      ? { [DEAD_LETTER_HEADERS.sourceTable]: source.table, [DEAD_LETTER_HEADERS.sourceId]: source.id }
      : {
          [DEAD_LETTER_HEADERS.sourceTopic]: source.topic,
          [DEAD_LETTER_HEADERS.sourcePartition]: String(source.partition),
          [DEAD_LETTER_HEADERS.sourceOffset]: source.offset,
        };
  return {
    key: record.key,
    value: record.value,
    headers: {
      ...record.headers,
      [DEAD_LETTER_HEADERS.code]: rejection.code,
      [DEAD_LETTER_HEADERS.stage]: rejection.stage,
      [DEAD_LETTER_HEADERS.detail]: rejection.detail.slice(0, 4_000),
      ...from,
      ...(rejection.agreement === undefined ? {} : { [DEAD_LETTER_HEADERS.agreement]: rejection.agreement }),
    },
  };
}

/** The headers a dead letter adds to its record (DESIGN.md §3), written by {@link deadLetterMessage}. */
export const DEAD_LETTER_HEADERS = {
  code: 'lt-error-code',
  stage: 'lt-error-stage',
  detail: 'lt-error-detail',
  sourceTopic: 'lt-source-topic',
  sourcePartition: 'lt-source-partition',
  sourceOffset: 'lt-source-offset',
  sourceTable: 'lt-source-table',
  sourceId: 'lt-source-id',
  agreement: 'lt-agreement',
} as const;

/** On a redriven record: the dead letter it was redriven from, `<topic>:<partition>:<offset>`. */
export const REDRIVEN_FROM_HEADER = 'lt-redriven-from';

const REASON_HEADERS = new Set<string>([
  DEAD_LETTER_HEADERS.code,
  DEAD_LETTER_HEADERS.stage,
  DEAD_LETTER_HEADERS.detail,
  DEAD_LETTER_HEADERS.agreement,
]);

/** One header as text (kafkajs gives a Buffer, a string, an array of them, or nothing). */
export function headerText(headers: IHeaders | undefined, name: string): string | undefined {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
}

/**
 * A dead letter sent back to its stage (`lt.redrive.<stage>`): the original key, value and headers, the old
 * reason removed, where it was first read kept (`lt-source-*`, so the stage reads it as that source record and a
 * refusal again names the same source), and the dead letter it came from in {@link REDRIVEN_FROM_HEADER}.
 */
export function redriveMessage(deadLetter: RejectedRecord, from: string): Message {
  const headers: IHeaders = {};
  for (const [name, value] of Object.entries(deadLetter.headers ?? {}))
    if (!REASON_HEADERS.has(name) && value !== undefined) headers[name] = value;
  return {
    key: deadLetter.key,
    value: deadLetter.value,
    headers: { ...headers, [REDRIVEN_FROM_HEADER]: from },
  };
}

/** Where a redriven record was first read (its `lt-source-*` headers), or null when they do not name a record. */
export function redrivenSourceOf(
  headers: IHeaders | undefined,
): { topic: string; partition: number; offset: string } | null {
  const topic = headerText(headers, DEAD_LETTER_HEADERS.sourceTopic);
  const partition = Number(headerText(headers, DEAD_LETTER_HEADERS.sourcePartition));
  const offset = headerText(headers, DEAD_LETTER_HEADERS.sourceOffset);
  if (topic === undefined || offset === undefined || !/^\d+$/.test(offset)) return null;
  if (!Number.isInteger(partition) || partition < 0) return null;
  return { topic, partition, offset };
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
