import kafkajs, {
  type Batch,
  type Consumer,
  type EachBatchPayload,
  type IHeaders,
  type KafkaMessage,
} from 'kafkajs';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';
import type { PipelineMetrics, StreamLabels } from '../observability/metrics.ts';
import { traceLogFields } from '../observability/trace.ts';
import { DeadLetters, deadLetterTopicOf, type RejectedFrom } from './dead-letter.ts';
import type { IdempotentSender } from './produce.ts';
import { streamOfTopic } from './topics.ts';

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

/**
 * kafkajs fetch bounds for the platform's consumers that read whole source topics (the coordinator, the NGDB
 * sink). kafkajs's defaults (1 MiB per partition, 10 MiB per request) bring up to ten thousand compressed citizen
 * records per partition at once, all decoded before the batch is written: 360 MB peak RSS for the NGDB sink
 * draining a backlog. A quarter of that per partition holds 225 MB at the same rate and CPU (docs/benchmarks.md);
 * a batch of a couple of thousand records still fills one PostgreSQL round trip. A larger record arrives alone.
 */
export const SOURCE_FETCH_BOUNDS = { maxBytesPerPartition: 262_144, maxBytes: 2_097_152 } as const;

/** One record of a batch as its stage reads it, with the Kafka record it came from. */
export interface ReadRecord<T> {
  item: T;
  message: KafkaMessage;
}

/** Where the refusals of one batch are counted and logged. */
interface RejectionWatch {
  metrics: PipelineMetrics;
  labels: StreamLabels;
  log: Logger;
}

/**
 * The refusals of one batch: `reject` dead-letters a record with its reason; `deadLetters` holds them until
 * they are sent (by the loop after `apply`, or by `apply` itself with its own records, as the coordinator does).
 * Each refusal is counted (`lienthong_rejected_records_total`, `lienthong_dead_letters_total`) and logged with
 * the record's trace id.
 */
export class BatchRejections {
  readonly deadLetters = new DeadLetters();
  private readonly batch: Batch;
  private readonly stage: string;
  private readonly owner: string | undefined;
  private readonly watch: RejectionWatch;
  private readonly sourceOf: ((message: KafkaMessage) => RejectedFrom | null) | undefined;

  constructor(
    batch: Batch,
    stage: string,
    owner: string | undefined,
    watch: RejectionWatch,
    sourceOf?: (message: KafkaMessage) => RejectedFrom | null,
  ) {
    this.batch = batch;
    this.stage = stage;
    this.owner = owner;
    this.watch = watch;
    this.sourceOf = sourceOf;
  }

  /** Dead-letters `message` for `error` (its LtError code, else LT_DECODE_FAILED); for one agreement if given. */
  reject(message: KafkaMessage, error: unknown, agreement?: string): void {
    const rejection = {
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
    };
    this.deadLetters.add(
      { key: message.key, value: message.value, headers: message.headers as IHeaders },
      rejection,
    );
    const { metrics, labels, log } = this.watch;
    metrics.rejected.inc({
      stage: this.stage,
      ...labels,
      ...(agreement === undefined ? {} : { agreement }),
      code: rejection.code,
    });
    metrics.deadLetters.inc({ topic: deadLetterTopicOf(rejection) });
    log.warn(
      {
        ...traceLogFields(message.headers),
        topic: this.batch.topic,
        partition: this.batch.partition,
        offset: message.offset,
        code: rejection.code,
        ...(agreement === undefined ? {} : { agreement }),
      },
      'record refused',
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
  /** The dataset and agreement its series are labelled with; default: what the topic's name says. */
  labels?: Partial<StreamLabels>;
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

/**
 * What every stage's loop uses: its consumer (offsets are committed through it), its sender (dead letters), its
 * consumer group (the lag series) and the process's metrics.
 */
export interface BatchLoop {
  consumer: Consumer;
  sender: IdempotentSender;
  log: Logger;
  group: string;
  metrics: PipelineMetrics;
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
 *
 * It counts what every stage has in common (records consumed, batch sizes, the partition's lag after the
 * commit, refusals) and logs one debug line per record processed, bound to the record's `trace_id`.
 */
export async function consumeBatch<T>(
  payload: EachBatchPayload,
  stage: BatchStage<T>,
  loop: BatchLoop,
): Promise<BatchOutcome | null> {
  const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
  if (batch.messages.length === 0 || !isRunning() || isStale()) return null;
  const labels = { ...streamOfTopic(batch.topic), ...stage.labels };
  const rejections = new BatchRejections(
    batch,
    stage.stage,
    stage.owner,
    { metrics: loop.metrics, labels, log: loop.log },
    stage.sourceOf,
  );
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
  const next = BigInt(batch.lastOffset()) + 1n;
  await commitOrRejoin(loop.consumer, batch, next.toString());
  resolveOffset(batch.lastOffset());
  observeBatch(payload.batch, stage.stage, labels, next, loop);
  await heartbeat();
  return { read: records.length, rejected: rejections.count };
}

/** The series and debug lines of one committed batch. */
function observeBatch(
  batch: Batch,
  stage: string,
  labels: StreamLabels,
  next: bigint,
  loop: BatchLoop,
): void {
  const { metrics } = loop;
  metrics.consumed.inc({ stage, ...labels }, batch.messages.length);
  metrics.batchSize.observe({ stage }, batch.messages.length);
  const behind = BigInt(batch.highWatermark) - next;
  metrics.lag.set(
    { stage, group: loop.group, topic: batch.topic, partition: String(batch.partition) },
    Number(behind > 0n ? behind : 0n),
  );
  if (!loop.log.isLevelEnabled('debug')) return;
  for (const message of batch.messages)
    loop.log.debug(
      {
        ...traceLogFields(message.headers),
        stage,
        topic: batch.topic,
        partition: batch.partition,
        offset: message.offset,
      },
      'record processed',
    );
}
