import kafkajs, {
  type Batch,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type KafkaMessage,
} from 'kafkajs';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import { DeadLetters, type RejectedFrom } from './dead-letter.ts';
import type { IdempotentSender } from './produce.ts';

/**
 * Group-membership answers to a commit: this member left the group's current generation (a session timeout under
 * load, a rebalance) and must join again. Nothing of the batch is lost: its offsets were not committed.
 */
const MEMBERSHIP_LOST = new Set([
  'UNKNOWN_MEMBER_ID',
  'ILLEGAL_GENERATION',
  'REBALANCE_IN_PROGRESS',
  'FENCED_INSTANCE_ID',
]);

function originalCause(error: unknown): unknown {
  let cause = error;
  while (cause instanceof Error && cause.cause !== undefined) cause = cause.cause;
  return cause;
}

/**
 * Commits the batch's next offset. kafkajs reports a commit refused for lost membership as non-retriable and then
 * stops the consumer for good; it is a reason to rejoin, so it is rethrown as a retriable error with no cause
 * (kafkajs decides from the innermost cause), which makes kafkajs restart the consumer: it rejoins and reads the
 * uncommitted batch again, which every stage applies idempotently.
 */
async function commitOrRejoin(consumer: Consumer, batch: Batch, offset: string): Promise<void> {
  try {
    await consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset }]);
  } catch (error) {
    const type = (originalCause(error) as { type?: unknown }).type;
    if (typeof type === 'string' && MEMBERSHIP_LOST.has(type))
      throw new kafkajs.KafkaJSError(
        `commit of ${batch.topic}[${batch.partition}] at ${offset} refused (${type}): rejoining the group`,
        { retriable: true },
      );
    throw error;
  }
}

/** One record of a batch as its stage reads it, with the Kafka record it came from. */
export interface ReadRecord<T> {
  item: T;
  message: KafkaMessage;
}

/**
 * The refusals of one batch: `reject` dead-letters a record with its reason; `deadLetters` holds them until
 * they are sent (by the loop after `apply`, or by `apply` itself with its own records, as the coordinator does).
 */
export class BatchRejections {
  readonly deadLetters = new DeadLetters();
  private readonly batch: Batch;
  private readonly stage: string;
  private readonly owner: string | undefined;
  private readonly sourceOf: ((message: KafkaMessage) => RejectedFrom | null) | undefined;

  constructor(
    batch: Batch,
    stage: string,
    owner: string | undefined,
    sourceOf?: (message: KafkaMessage) => RejectedFrom | null,
  ) {
    this.batch = batch;
    this.stage = stage;
    this.owner = owner;
    this.sourceOf = sourceOf;
  }

  /** Dead-letters `message` for `error` (its LtError code, else LT_DECODE_FAILED); for one agreement if given. */
  reject(message: KafkaMessage, error: unknown, agreement?: string): void {
    this.deadLetters.add(
      { key: message.key, value: message.value, headers: message.headers as IHeaders },
      {
        stage: this.stage,
        ...(this.owner === undefined ? {} : { owner: this.owner }),
        code: error instanceof LtError ? error.code : 'LT_DECODE_FAILED',
        detail: (error as Error).message,
        source: this.sourceOf?.(message) ?? {
          topic: this.batch.topic,
          partition: this.batch.partition,
          offset: message.offset,
        },
        ...(agreement === undefined ? {} : { agreement }),
      },
    );
  }

  get count(): number {
    return this.deadLetters.count;
  }
}

/** What one consuming stage does with its records; the loop does the rest ({@link consumeBatch}). */
export interface BatchStage<T> {
  /** Dead letters go to `lt.dlq.<stage>`, or `lt.dlq.<stage>.<owner>` for one agency's records. */
  stage: string;
  owner?: string;
  /**
   * Where a record was first read, when not where the batch read it: a redriven dead letter names its source
   * record, so that a refusal again names the same source. Default: the batch's topic, partition and offset.
   */
  sourceOf?: (message: KafkaMessage) => RejectedFrom | null;
  /**
   * What one record is: its item, or null to pass over it (a tombstone). A throw refuses the record — to the
   * dead-letter topic with its reason — unless it is a retriable LtError (the registry unreachable, say),
   * which fails the batch: kafkajs reads it again from the last committed offset.
   */
  read(message: KafkaMessage): Promise<T | null>;
  /**
   * Acts on the records read, in offset order, refusing any it cannot act on through `rejections` (for a data
   * error, {@link writeIsolatingRefusals} in infra/postgres/refusals.ts). Resolves once its effects are durable:
   * the offsets are committed after it. A throw fails the batch.
   */
  apply(records: ReadRecord<T>[], rejections: BatchRejections): Promise<void>;
}

/** What every stage's loop uses: its consumer (offsets are committed through it) and its sender (dead letters). */
export interface BatchLoop {
  consumer: Consumer;
  sender: IdempotentSender;
  log: Logger;
}

/** The counts of one batch the loop worked on. */
export interface BatchOutcome {
  /** Records read into items. */
  read: number;
  /** Records dead-lettered, by `read` or by `apply`. */
  rejected: number;
}

/**
 * The consumer batch loop of every stage that reads Kafka (the coordinator, the NGDB sink, the subscriber
 * sinks), written once: read each record (bounded decode and envelope checks live in the stage's `read`) →
 * apply the batch → send its dead letters → commit the offset after the last record → heartbeat. A record is
 * therefore either applied, or dead-lettered with its reason, or read again; never skipped. Returns null when
 * it passed over the batch: empty, the consumer stopping, or the partition reassigned (whoever reads it next
 * starts from the committed offset). Use with `autoCommit: false` and `eachBatchAutoResolve: false`.
 */
export async function consumeBatch<T>(
  payload: EachBatchPayload,
  stage: BatchStage<T>,
  loop: BatchLoop,
): Promise<BatchOutcome | null> {
  const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
  if (batch.messages.length === 0 || !isRunning() || isStale()) return null;
  const rejections = new BatchRejections(batch, stage.stage, stage.owner, stage.sourceOf);
  const records: ReadRecord<T>[] = [];
  for (const message of batch.messages) {
    try {
      const item = await stage.read(message);
      if (item !== null) records.push({ item, message });
    } catch (error) {
      if (error instanceof LtError && error.retriable) throw error;
      rejections.reject(message, error);
    }
  }
  await stage.apply(records, rejections);
  const left = rejections.deadLetters.take();
  if (left.length > 0) await loop.sender.send({ topicMessages: left });
  if (rejections.count > 0)
    loop.log.warn(
      {
        topic: batch.topic,
        partition: batch.partition,
        count: rejections.count,
        first: rejections.deadLetters.firstRejection,
      },
      'records sent to the dead-letter topic',
    );
  const next = (BigInt(batch.lastOffset()) + 1n).toString();
  await commitOrRejoin(loop.consumer, batch, next);
  resolveOffset(batch.lastOffset());
  await heartbeat();
  return { read: records.length, rejected: rejections.count };
}
