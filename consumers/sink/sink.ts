import { performance } from 'node:perf_hooks';
import type { Consumer, EachBatchPayload, IHeaders, KafkaMessage, Producer } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { lostPositions } from '../../infra/kafka/admin.ts';
import { subjects } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import { controlOf, revisionOf, type ShareControl } from '../../schemas/envelope/share-stream.ts';
import { decodeWireValue } from '../../schemas/registry/decode.ts';
import { failureSignal, watchConsumer } from '../../infra/kafka/consumer-failure.ts';
import { sendToDeadLetter, type Rejection, type RejectedRecord } from '../../infra/kafka/dead-letter.ts';
import type { Deduplicator } from './dedup.ts';
import { prepareSinkTable, purgeSinkTable } from './evolution.ts';
import { sinkSettings, type SinkOptions, type SinkSettings } from './options.ts';
import { SinkTable, type SinkRow } from './table.ts';

export type { SinkOptions };

export interface SinkStats {
  /** Events decoded and offered to the upsert. */
  received: number;
  /** Rows written (inserted or replaced by a newer revision or version). */
  applied: number;
  /** Events dropped by Redis dedup or by batch collapsing before reaching PostgreSQL. */
  skipped: number;
  /** Rows the guard kept because the stored (revision, version) was already newer or equal. */
  stale: number;
  /** Records sent to the DLQ. */
  rejected: number;
  /** Batches processed without Redis (none configured, or it failed or timed out): on the guard alone. */
  dedupUnavailable: number;
  /** Times a partition was paused after a slow batch. */
  pauses: number;
  /** `agreement-ended` control records handled (one per partition of the share topic). */
  agreementsEnded: number;
  /** Partitions found at start whose unread records were removed before this sink read them. */
  lostPositions: number;
}

/** One decoded change event and where it came from. */
interface Received {
  event: ChangeEvent;
  /** The agreement revision it was derived under (0 when the header is absent). */
  revision: number;
  message: KafkaMessage;
}

/** The outcome of the database work of one batch. */
interface BatchTotals {
  received: number;
  applied: number;
  skipped: number;
  stale: number;
  /** Time spent in PostgreSQL. */
  dbMs: number;
  /** Some dedup call of the batch went without Redis. */
  withoutRedis: boolean;
  ended: number;
}

/** (revision, version) of `a` is strictly newer than that of `b`: the order the upsert guard uses. */
function newer(a: Received, b: Received): boolean {
  return a.revision !== b.revision ? a.revision > b.revision : a.event.version > b.event.version;
}

/**
 * A PostgreSQL error caused by the values of the rows (SQLSTATE class 22 data exception, class 23
 * integrity constraint violation), not by the server: retrying cannot help.
 */
function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
}

/**
 * Materializes one change-event topic into a typed PostgreSQL table: evolve the table → per batch, decode →
 * dedup (Redis) → collapse to the newest (revision, version) per key → guarded upsert → commit offsets only
 * after the database commit. Control records (`lt-control`) end the agreement: purge or retain the table.
 */
export class Sink {
  readonly table: SinkTable;
  /** The value subject of the topic read: every record's schema must be registered under it. */
  private readonly subject: string;
  readonly stats: SinkStats = {
    received: 0,
    applied: 0,
    skipped: 0,
    stale: 0,
    rejected: 0,
    dedupUnavailable: 0,
    pauses: 0,
    agreementsEnded: 0,
    lostPositions: 0,
  };
  private readonly consumer: Consumer;
  private readonly dlq: Producer;
  private readonly log: Logger;
  private readonly settings: SinkSettings;
  /** Scoped to the table instance once started; replaced when a purge empties the table. */
  private dedup: Deduplicator;
  /** Slow batches in a row, per partition. */
  private readonly slowStreak = new Map<number, number>();
  private readonly resumeTimers = new Set<NodeJS.Timeout>();
  private stopped = false;
  private readonly fail: (error: LtError) => void;
  /** Resolves if the sink stops reading for good (LT_CONSUMER_STOPPED, with the cause); a service exits on it. */
  readonly failed: Promise<LtError>;

  private readonly options: SinkOptions;

  constructor(options: SinkOptions) {
    this.options = options;
    ({ failed: this.failed, fail: this.fail } = failureSignal());
    this.settings = sinkSettings(options);
    this.table = new SinkTable(options.dataset);
    this.subject = subjects.value(options.topic);
    this.dedup = options.dedup;
    this.log = options.log.child({ component: 'sink', topic: options.topic, group: options.groupId });
    this.consumer = options.kafka.consumer({
      groupId: options.groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: this.settings.maxBytesPerPartition,
      maxBytes: this.settings.maxBytes,
      maxWaitTimeInMs: this.settings.maxWaitTimeMs,
      sessionTimeout: this.settings.sessionTimeoutMs,
      // kafkajs's default (3 s) would not fit a short session timeout
      heartbeatInterval: Math.min(3_000, Math.floor(this.settings.sessionTimeoutMs / 3)),
    });
    watchConsumer(this.consumer, `the sink of ${options.topic}`, this.log, this.fail);
    this.dlq = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
  }

  /**
   * Creates or evolves the table (refusing with LT_SINK_SCHEMA_CONFLICT when a column changed type or left
   * the dataset), then consumes from the group's offsets (from the beginning for a new group).
   */
  async start(): Promise<void> {
    const prepared = await prepareSinkTable(this.options.pool, this.table, this.log);
    this.dedup = this.options.dedup.scoped(prepared.instanceId);
    await this.dlq.connect();
    await this.reportLostPositions();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.settings.partitionsConsumedConcurrently,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.log.info(
      {
        table: this.table.name,
        created: prepared.created,
        added: prepared.added.map((column) => column.column),
        instance: prepared.instanceId,
      },
      'sink started',
    );
  }

  /**
   * Says so, loudly, when records this sink had not read were removed from its topic (the subscriber was offline
   * longer than the topic kept them): it resumes from the first record still held, and its copy may lack
   * changes and deletes until it is reconciled. For a share topic the platform does that: the coordinator sees
   * the same position and re-derives the agreement as a new revision, whose records replace every row and
   * delete those no longer shared (docs/sink.md, *Lost positions*).
   */
  private async reportLostPositions(): Promise<void> {
    const lost = await lostPositions(this.options.kafka, this.options.groupId, this.options.topic).catch(
      (error: unknown) => {
        // a broker still loading its groups, say: the check is a report, never a reason not to start
        this.log.warn({ err: error }, 'could not compare the group’s positions with the topic’s log start');
        return [];
      },
    );
    if (lost.length === 0) return;
    this.stats.lostPositions += lost.length;
    this.log.error(
      { topic: this.options.topic, group: this.options.groupId, lost },
      'records this sink had not read were removed from its topic: resuming from the first one still held; ' +
        'the copy is reconciled when the agreement is re-derived (the coordinator does it when it sees this)',
    );
  }

  /** Leaves the group after the batch in progress; its offsets are committed only if its rows were. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const timer of this.resumeTimers) clearTimeout(timer);
    this.resumeTimers.clear();
    await this.consumer.disconnect();
    await this.dlq.disconnect();
  }

  private async decode(value: Buffer): Promise<ChangeEvent> {
    const event = (await decodeWireValue(this.options.registry, value, {
      subject: this.subject,
    })) as ChangeEvent;
    if (event.dataset !== this.options.dataset.id) {
      throw new LtError(
        'LT_RECORD_INVALID',
        `event for dataset "${event.dataset}" on the topic of ${this.options.dataset.id}`,
      );
    }
    return event;
  }

  private async handleBatch({
    batch,
    resolveOffset,
    heartbeat,
    pause,
    isRunning,
    isStale,
  }: EachBatchPayload): Promise<void> {
    // stopping, or the partition was reassigned: leave the batch to whoever reads from the committed offset
    if (batch.messages.length === 0 || !isRunning() || isStale()) return;
    const log = this.log.child({ partition: batch.partition });
    const rejected: { record: RejectedRecord; rejection: Rejection }[] = [];
    const reject = (message: KafkaMessage, error: unknown): void => {
      rejected.push({
        record: { key: message.key, value: message.value, headers: message.headers as IHeaders },
        rejection: {
          stage: this.settings.stage,
          ...(this.options.owner === undefined ? {} : { owner: this.options.owner }),
          code: error instanceof LtError ? error.code : 'LT_DECODE_FAILED',
          detail: (error as Error).message,
          source: { topic: batch.topic, partition: batch.partition, offset: message.offset },
        },
      });
    };
    const totals: BatchTotals = {
      received: 0,
      applied: 0,
      skipped: 0,
      stale: 0,
      dbMs: 0,
      withoutRedis: false,
      ended: 0,
    };

    // Records are applied in offset order; a control record first applies the events before it.
    let pending: Received[] = [];
    const flush = async (): Promise<void> => {
      const items = pending;
      pending = [];
      if (items.length > 0) await this.apply(items, totals, reject);
    };
    for (const message of batch.messages) {
      const control = controlOf(message.headers as IHeaders);
      if (control instanceof LtError) {
        reject(message, control);
        continue;
      }
      if (control !== null) {
        await flush();
        await this.endAgreement(control, totals, log, message.offset);
        continue;
      }
      if (message.value === null) continue; // tombstone: the DELETE before it carried the version
      try {
        const revision = revisionOf(message.headers as IHeaders);
        pending.push({ event: await this.decode(message.value), revision, message });
      } catch (error) {
        if (error instanceof LtError && error.retriable) throw error; // kafkajs retries the batch
        reject(message, error);
      }
    }
    await flush();

    await sendToDeadLetter(this.dlq, rejected, log);
    const next = (BigInt(batch.lastOffset()) + 1n).toString();
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
    resolveOffset(batch.lastOffset());
    await heartbeat();

    this.stats.received += totals.received;
    this.stats.applied += totals.applied;
    this.stats.skipped += totals.skipped;
    this.stats.stale += totals.stale;
    this.stats.rejected += rejected.length;
    this.stats.agreementsEnded += totals.ended;
    if (totals.withoutRedis) this.stats.dedupUnavailable++;
    this.backpressure(batch.partition, totals.dbMs, pause, log);
  }

  /**
   * Dedup → collapse to the newest (revision, version) per key → guarded upsert → remember the applied ids.
   * The ids go to Redis after the database commit, under the instance the rows were written to.
   */
  private async apply(
    items: Received[],
    totals: BatchTotals,
    reject: (message: KafkaMessage, error: unknown) => void,
  ): Promise<void> {
    const dedup = this.dedup;
    const failuresBefore = dedup.failures;
    const seen = await dedup.seen(items.map(({ event }) => event.eventId));
    const latest = new Map<string, Received>();
    for (const item of items) {
      if (seen.has(item.event.eventId)) continue;
      const current = latest.get(item.event.key);
      if (!current || newer(item, current)) latest.set(item.event.key, item);
    }
    const rows = [...latest.values()].sort((a, b) =>
      a.event.key < b.event.key ? -1 : a.event.key > b.event.key ? 1 : 0,
    );
    const started = performance.now();
    const { applied, refused } = await this.write(rows);
    totals.dbMs += performance.now() - started;
    for (const { item, error } of refused) reject(item.message, error);
    // Every id offered is settled once the rows are committed — applied, stale, or superseded by a newer
    // event of its key in this batch — except those of a key whose newest event PostgreSQL refused.
    const refusedKeys = new Set(refused.map(({ item }) => item.event.key));
    await dedup.remember(
      items
        .filter(({ event }) => !seen.has(event.eventId) && !refusedKeys.has(event.key))
        .map(({ event }) => event.eventId),
    );

    totals.received += items.length;
    totals.skipped += items.length - latest.size;
    totals.applied += applied;
    totals.stale += latest.size - refused.length - applied;
    if (!dedup.enabled || dedup.failures > failuresBefore) totals.withoutRedis = true;
  }

  /**
   * Upserts rows with distinct keys in one statement. Should PostgreSQL refuse the values of a row (a data
   * error no retry can fix), the rows are written one by one instead — the guard makes that equivalent —
   * and the refused ones are returned for the DLQ, so a poison record cannot block its partition.
   */
  private async write(
    items: Received[],
  ): Promise<{ applied: number; refused: { item: Received; error: LtError }[] }> {
    const refused: { item: Received; error: LtError }[] = [];
    if (items.length === 0) return { applied: 0, refused };
    const upsert = async (batch: Received[]): Promise<number> => {
      const rows: SinkRow[] = batch.map(({ event, revision }) => this.table.row(event, revision));
      const result = await this.options.pool.query(this.table.upsertSql(), this.table.upsertParams(rows));
      return result.rowCount ?? 0;
    };
    try {
      return { applied: await upsert(items), refused };
    } catch (error) {
      if (!isDataError(error)) throw error;
    }
    let applied = 0;
    for (const item of items) {
      try {
        applied += await upsert([item]);
      } catch (error) {
        if (!isDataError(error)) throw error;
        const { code, message } = error as { code: string; message: string };
        refused.push({
          item,
          error: new LtError(
            'LT_RECORD_INVALID',
            `PostgreSQL cannot store it: ${message} (SQLSTATE ${code})`,
            {
              cause: error,
            },
          ),
        });
      }
    }
    return { applied, refused };
  }

  /** The agreement ended: purge (TRUNCATE, new instance id) or keep the table. Idempotent. */
  private async endAgreement(
    control: ShareControl,
    totals: BatchTotals,
    log: Logger,
    offset: string,
  ): Promise<void> {
    totals.ended++;
    if (control.policy === 'retain') {
      log.info(
        { agreement: control.agreement, policy: control.policy, offset },
        'agreement ended; table retained',
      );
      return;
    }
    const started = performance.now();
    const instanceId = await purgeSinkTable(this.options.pool, this.table);
    totals.dbMs += performance.now() - started;
    this.dedup = this.options.dedup.scoped(instanceId);
    log.warn(
      {
        agreement: control.agreement,
        policy: control.policy,
        offset,
        table: this.table.name,
        instance: instanceId,
      },
      'agreement ended; table purged',
    );
  }

  /**
   * After a batch whose database work took longer than `slowBatchMs`, pauses its partition for `pauseMs`,
   * doubling with each slow batch in a row up to `maxPauseMs`; a batch that is not slow resets the streak.
   */
  private backpressure(partition: number, dbMs: number, pause: () => () => void, log: Logger): void {
    if (dbMs <= this.settings.slowBatchMs) {
      this.slowStreak.delete(partition);
      return;
    }
    const streak = (this.slowStreak.get(partition) ?? 0) + 1;
    this.slowStreak.set(partition, streak);
    const delay = Math.min(this.settings.pauseMs * 2 ** Math.min(streak - 1, 30), this.settings.maxPauseMs);
    const resume = pause();
    this.stats.pauses++;
    log.warn(
      { dbMs: Math.round(dbMs), slowBatchMs: this.settings.slowBatchMs, pauseMs: delay, streak },
      'slow batch; partition paused',
    );
    const timer = setTimeout(() => {
      this.resumeTimers.delete(timer);
      if (!this.stopped) resume();
    }, delay);
    this.resumeTimers.add(timer);
  }
}
