import type { IHeaders } from 'kafkajs';
import { DEAD_LETTER_HEADERS, headerText, REDRIVEN_FROM_HEADER } from '../../infra/kafka/dead-letter.ts';
import { topicKind } from '../../infra/kafka/topics.ts';
import { LtError } from '../../infra/errors.ts';

/** Where one dead letter is kept: a `lt.dlq.*` topic, partition and offset (written `topic:partition:offset`). */
export interface DeadLetterAddress {
  topic: string;
  partition: number;
  offset: string;
}

const ADDRESS = /^(lt\.dlq\.[a-z0-9.-]+):(\d{1,5}):(\d{1,19})$/;

/** `lt.dlq.ngdb:0:17` as an address; anything else is refused with the expected form. */
export function parseDeadLetterAddress(text: string): DeadLetterAddress {
  const match = ADDRESS.exec(text.trim());
  if (!match || topicKind(match[1]!).kind !== 'dead-letter')
    throw new LtError('LT_ARGUMENT_INVALID', `"${text}" is not a dead-letter address`, {
      details: { address: text },
      hint: 'write it as <topic>:<partition>:<offset>, e.g. lt.dlq.ngdb:0:17 (the first column of `lienthong dlq list`)',
    });
  return { topic: match[1]!, partition: Number(match[2]), offset: BigInt(match[3]!).toString() };
}

export function formatDeadLetterAddress(address: DeadLetterAddress): string {
  return `${address.topic}:${address.partition}:${address.offset}`;
}

/** One dead-letter record as read from its topic: the original bytes, the reason headers beside them. */
export interface DeadLetterRecord extends DeadLetterAddress {
  /** When it was dead-lettered (the record's Kafka timestamp). */
  timestamp: Date;
  key: Buffer | null;
  value: Buffer | null;
  headers: IHeaders;
}

/** What became of a dead letter an operator handled; an open one has none. */
export interface DeadLetterResolution {
  resolution: 'redriven' | 'discarded';
  reason: string;
  principal: string;
  resolvedAt: string;
  /** The operator_audit entry of the command that resolved it. */
  auditSeq: number;
}

/**
 * One dead letter as plain JSON (what `dlq list --json`, `lienthong status` and the ops console show): where it
 * is kept, why it was refused, where it came from, and whether it is still open.
 */
export interface DeadLetterView {
  /** `topic:partition:offset`, what `dlq show`, `redrive` and `discard` take. */
  address: string;
  topic: string;
  partition: number;
  offset: string;
  /** The stage that refused it (`lt-error-stage`, else the topic's). */
  stage: string;
  /** The agency whose dead-letter topic holds it (`lt.dlq.<stage>.<agency>`); null for a platform stage. */
  agency: string | null;
  code: string;
  detail: string;
  /** The agreement it was refused for alone (the others received it), if any. */
  agreement: string | null;
  /** Where the stage read it: a Kafka record, a table row (the outbox), or unknown. */
  source: { topic: string; partition: number; offset: string } | { table: string; id: string } | null;
  /** The dataset of its source topic, or of the agreement whose share topic it came from; null if unknown. */
  dataset: string | null;
  /** ISO time it was dead-lettered. */
  deadLetteredAt: string;
  /** The record key as text, at most 80 characters; null for none. */
  key: string | null;
  /** Bytes of the value; null for a tombstone. */
  valueBytes: number | null;
  /** The dead letter it is a redrive of, when it was refused again after a redrive. */
  redrivenFrom: string | null;
  status: 'open' | 'redriven' | 'discarded';
  resolution: DeadLetterResolution | null;
}

const KEY_PREVIEW = 80;

/**
 * A dead-letter record as a view: reason and source from its `lt-*` headers (infra/kafka/dead-letter.ts),
 * the dataset from its source topic or the agreement of its share topic (`datasetOfAgreement`).
 */
export function viewOf(
  record: DeadLetterRecord,
  resolution: DeadLetterResolution | null,
  datasetOfAgreement: (agreementId: string) => string | undefined = () => undefined,
): DeadLetterView {
  const header = (name: string): string | undefined => headerText(record.headers, name);
  const kind = topicKind(record.topic);
  const sourceTopic = header(DEAD_LETTER_HEADERS.sourceTopic);
  const sourceTable = header(DEAD_LETTER_HEADERS.sourceTable);
  const source: DeadLetterView['source'] =
    sourceTopic !== undefined
      ? {
          topic: sourceTopic,
          partition: Number(header(DEAD_LETTER_HEADERS.sourcePartition) ?? -1),
          offset: header(DEAD_LETTER_HEADERS.sourceOffset) ?? '',
        }
      : sourceTable !== undefined
        ? { table: sourceTable, id: header(DEAD_LETTER_HEADERS.sourceId) ?? '' }
        : null;
  const agreement = header(DEAD_LETTER_HEADERS.agreement) ?? null;
  const sourceKind = sourceTopic === undefined ? null : topicKind(sourceTopic);
  const dataset =
    sourceKind?.kind === 'source'
      ? sourceKind.dataset
      : sourceKind?.kind === 'share'
        ? (datasetOfAgreement(sourceKind.agreement) ?? null)
        : agreement !== null
          ? (datasetOfAgreement(agreement) ?? null)
          : null;
  const key = record.key === null ? null : record.key.toString('utf8').slice(0, KEY_PREVIEW);
  return {
    address: formatDeadLetterAddress(record),
    topic: record.topic,
    partition: record.partition,
    offset: record.offset,
    stage: header(DEAD_LETTER_HEADERS.stage) ?? (kind.kind === 'dead-letter' ? kind.stage : 'unknown'),
    agency: kind.kind === 'dead-letter' ? (kind.agency ?? null) : null,
    code: header(DEAD_LETTER_HEADERS.code) ?? 'unknown',
    detail: header(DEAD_LETTER_HEADERS.detail) ?? '',
    agreement,
    source,
    dataset,
    deadLetteredAt: record.timestamp.toISOString(),
    key,
    valueBytes: record.value === null ? null : record.value.length,
    redrivenFrom: header(REDRIVEN_FROM_HEADER) ?? null,
    status: resolution?.resolution ?? 'open',
    resolution,
  };
}

const PREVIEW_BYTES = 256;

/**
 * Bytes that did not decode, shown without trusting them: the first {@link PREVIEW_BYTES} as hex and as text
 * with every control or non-ASCII byte written as `.`.
 */
export function bytesPreview(bytes: Buffer): {
  bytes: number;
  hex: string;
  text: string;
  truncated: boolean;
} {
  const head = bytes.subarray(0, PREVIEW_BYTES);
  return {
    bytes: bytes.length,
    hex: head.toString('hex'),
    text: [...head].map((byte) => (byte >= 0x20 && byte < 0x7f ? String.fromCharCode(byte) : '.')).join(''),
    truncated: bytes.length > PREVIEW_BYTES,
  };
}
