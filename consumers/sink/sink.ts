import { performance } from 'node:perf_hooks';
import type { Consumer, EachBatchPayload, IHeaders } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { lostPositions } from '../../infra/kafka/admin.ts';
import {
  consumeBatch,
  type BatchLoop,
  type BatchRejections,
  type ReadRecord,
} from '../../infra/kafka/batch-loop.ts';
import { IdempotentSender } from '../../infra/kafka/produce.ts';
import { writeIsolatingRefusals } from '../../infra/postgres/refusals.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { PipelineMetrics, type StreamLabels } from '../../infra/observability/metrics.ts';
import { streamOfTopic } from '../../infra/kafka/topics.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import {
  controlOf,
  decodeShareEvent,
  revisionOf,
  type ShareControl,
} from '../../schemas/envelope/share-stream.ts';
import { failureSignal, watchConsumer } from '../../infra/kafka/consumer-failure.ts';
import type { Deduplicator } from './dedup.ts';
import { prepareSinkTable, purgeSinkTable } from './evolution.ts';
import { sinkSettings, type SinkOptions, type SinkSettings } from './options.ts';
import { SinkTable, type SinkRow } from '../../schemas/postgres/table.ts';

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

/** One decoded change event and the agreement revision it was derived under (0 when the header is absent). */
interface Received {
  event: ChangeEvent;
  revision: number;
}

/** What one record of a share topic is: a change event, or a control record of the agreement. */
type ShareRecord = { event: Received } | { control: ShareControl };

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
 * Materializes one change-event topic into a typed PostgreSQL table: evolve the table → per batch
 * (infra/kafka/batch-loop.ts), decode → dedup (Redis) → collapse to the newest (revision, version) per key →
 * guarded upsert → commit offsets only after the database commit. Control records (`lt-control`) end the agreement: purge or retain the table.
 */
export class Sink {
  readonly table: SinkTable;
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
  private readonly loop: BatchLoop;
  private readonly metrics: PipelineMetrics;
  /** The dataset and agreement of this sink's series. */
  private readonly labels: StreamLabels;
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
    this.metrics = options.metrics ?? new PipelineMetrics();
    this.labels = { dataset: options.dataset.id, agreement: streamOfTopic(options.topic).agreement };
    this.loop = {
      consumer: this.consumer,
      sender: new IdempotentSender(options.kafka, this.log),
      log: this.log,
      group: options.groupId,
      metrics: this.metrics,
    };
  }

  /**
   * Creates or evolves the table (refusing with LT_SINK_SCHEMA_CONFLICT when a column changed type or left
   * the dataset), then consumes from the group's offsets (from the beginning for a new group).
   */
  async start(): Promise<void> {
    const prepared = await prepareSinkTable(this.options.pool, this.table, this.log);
    this.dedup = this.options.dedup.scoped(prepared.instanceId);
    await this.loop.sender.connect();
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
    await this.loop.sender.disconnect();
  }

  /** A control record, or a change event of the topic's dataset; null for a tombstone. */
  private async read(message: { headers?: IHeaders; value: Buffer | null }): Promise<ShareRecord | null> {
    const control = controlOf(message.headers ?? {});
    if (control instanceof LtError) throw control;
    if (control !== null) return { control };
    if (message.value === null) return null; // tombstone: the DELETE before it carried the version
    const revision = revisionOf(message.headers ?? {});
    const event = await decodeShareEvent(
      this.options.registry,
      this.options.dataset.id,
      this.options.topic,
      message.value,
    );
    return { event: { event, revision } };
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const log = this.log.child({ partition: batch.partition });
    const totals: BatchTotals = {
      received: 0,
      applied: 0,
      skipped: 0,
      stale: 0,
      dbMs: 0,
      withoutRedis: false,
      ended: 0,
    };
    const outcome = await consumeBatch(
      payload,
      {
        stage: this.settings.stage,
        ...(this.options.owner === undefined ? {} : { owner: this.options.owner }),
        labels: this.labels,
        read: (message) => this.read(message),
        apply: (records, rejections) => this.applyInOrder(records, rejections, totals, log),
      },
      this.loop,
    );
    if (!outcome) return;
    this.stats.received += totals.received;
    this.stats.applied += totals.applied;
    this.stats.skipped += totals.skipped;
    this.stats.stale += totals.stale;
    this.stats.rejected += outcome.rejected;
    this.stats.agreementsEnded += totals.ended;
    if (totals.withoutRedis) this.stats.dedupUnavailable++;
    this.backpressure(batch.partition, totals.dbMs, payload.pause, log);
  }

  /** Applies the records in offset order: the events before a control record, then the control record. */
  private async applyInOrder(
    records: ReadRecord<ShareRecord>[],
    rejections: BatchRejections,
    totals: BatchTotals,
    log: Logger,
  ): Promise<void> {
    let pending: ReadRecord<Received>[] = [];
    const flush = async (): Promise<void> => {
      const items = pending;
      pending = [];
      if (items.length > 0) await this.apply(items, totals, rejections);
    };
    for (const { item, message } of records) {
      if ('control' in item) {
        await flush();
        await this.endAgreement(item.control, totals, log, message.offset);
      } else pending.push({ item: item.event, message });
    }
    await flush();
  }

  /**
   * Dedup → collapse to the newest (revision, version) per key → guarded upsert → remember the applied ids.
   * The ids go to Redis after the database commit, under the instance the rows were written to.
   */
  private async apply(
    items: ReadRecord<Received>[],
    totals: BatchTotals,
    rejections: BatchRejections,
  ): Promise<void> {
    const dedup = this.dedup;
    const failuresBefore = dedup.failures;
    const seen = await dedup.seen(items.map(({ item }) => item.event.eventId));
    if (dedup.enabled) this.metrics.countDedup(this.settings.stage, items.length, seen.size);
    const latest = new Map<string, ReadRecord<Received>>();
    for (const record of items) {
      const { event } = record.item;
      if (seen.has(event.eventId)) continue;
      const current = latest.get(event.key);
      if (!current || newer(record.item, current.item)) latest.set(event.key, record);
    }
    const rows = [...latest.values()].sort((a, b) =>
      a.item.event.key < b.item.event.key ? -1 : a.item.event.key > b.item.event.key ? 1 : 0,
    );
    const started = performance.now();
    // should PostgreSQL refuse a row's values, the rows go one by one (the guard makes that equivalent)
    const { results, refused } = await writeIsolatingRefusals(rows, (some) =>
      this.upsert(some.map(({ item }) => item)),
    );
    const applied = results.reduce((sum, count) => sum + count, 0);
    totals.dbMs += performance.now() - started;
    for (const { item, error } of refused) rejections.reject(item.message, error);
    // Every id offered is settled once the rows are committed — applied, stale, or superseded by a newer
    // event of its key in this batch — except those of a key whose newest event PostgreSQL refused.
    const refusedKeys = new Set(refused.map(({ item }) => item.item.event.key));
    await dedup.remember(
      items
        .filter(({ item }) => !seen.has(item.event.eventId) && !refusedKeys.has(item.event.key))
        .map(({ item }) => item.event.eventId),
    );

    this.metrics.materialized.inc({ stage: this.settings.stage, ...this.labels }, applied);
    this.metrics.observeLatency(
      this.settings.stage,
      this.labels,
      rows.filter(({ item }) => !refusedKeys.has(item.event.key)).map(({ item }) => item.event.occurredAt),
    );
    totals.received += items.length;
    totals.skipped += items.length - latest.size;
    totals.applied += applied;
    totals.stale += latest.size - refused.length - applied;
    if (!dedup.enabled || dedup.failures > failuresBefore) totals.withoutRedis = true;
  }

  /** Upserts rows with distinct keys in one statement; returns how many it wrote. */
  private async upsert(items: Received[]): Promise<number> {
    const rows: SinkRow[] = items.map(({ event, revision }) => this.table.row(event, revision));
    const result = await this.options.pool.query(this.table.upsertSql(), this.table.upsertParams(rows));
    return result.rowCount ?? 0;
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
