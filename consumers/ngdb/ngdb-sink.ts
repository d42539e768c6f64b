import { randomUUID } from 'node:crypto';
import type { Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { consumerGroups, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { inTransaction, type Pool, type PoolClient } from '../../infra/postgres/pool.ts';
import type { RedisClient } from '../../infra/redis/client.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import { decodeSourceEvent } from '../../schemas/envelope/check.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import {
  consumeBatch,
  SOURCE_FETCH_BOUNDS,
  type BatchLoop,
  type BatchRejections,
  type ReadRecord,
} from '../../infra/kafka/batch-loop.ts';
import { failureSignal, watchConsumer } from '../../infra/kafka/consumer-failure.ts';
import { IdempotentSender } from '../../infra/kafka/produce.ts';
import { writeIsolatingRefusals } from '../../infra/postgres/refusals.ts';
import { lostPositions } from '../../infra/kafka/admin.ts';
import { deadLetterTopicSpec, reconcileTopics, redriveTopicSpec } from '../../infra/kafka/provision.ts';
import { redrivenSourceOf } from '../../infra/kafka/dead-letter.ts';
import { Deduplicator } from '../sink/dedup.ts';
import type { SinkRow } from '../../schemas/postgres/table.ts';
import { HistoryTable } from '../../schemas/postgres/history.ts';
import { PipelineMetrics } from '../../infra/observability/metrics.ts';

export interface NgdbSinkOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  /** The NGDB database, its search_path set to the NGDB schema. */
  pool: Pool;
  /** Every dataset of it is materialized; each one's `lt.src.<id>` topic must exist. */
  dictionary: Dictionary;
  /**
   * Redis for dedup of event ids already stored. Only saves work: the database keeps the result correct
   * without it (unique `_event_id` in the history, version guard in the current state). null: none.
   */
  redis: RedisClient | null;
  log: Logger;
  /** The process's metrics (infra/observability); default: the sink's own, served nowhere. */
  metrics?: PipelineMetrics;
  /** Consumer group. Default `lt.ngdb`; a rebuild or a test uses its own. */
  groupId?: string;
  /** DLQ stage of rejected records: they go to `lt.dlq.<stage>`. Default `ngdb`. */
  stage?: string;
  /** Days a dead letter is kept on `lt.dlq.<stage>` (provisioned at start). Default 30. */
  deadLetterRetentionDays?: number;
  /** How long Redis remembers a stored event id, in seconds. Default 7 days. */
  dedupTtlSeconds?: number;
  /**
   * Partitions (of any dataset) processed at once. Default 3: one batch is decoded while another waits for
   * PostgreSQL. Each batch is one partition of one dataset, in its own transaction; rows are written in key /
   * event-id order, so concurrent batches cannot deadlock.
   */
  partitionsConsumedConcurrently?: number;
  /**
   * Most bytes fetched per partition per request (kafkajs `maxBytesPerPartition`): bounds a batch, hence the
   * decoded records held at once, hence the sink's memory. Default {@link SOURCE_FETCH_BOUNDS}.
   */
  maxBytesPerPartition?: number;
  /** Most bytes fetched per request across partitions (kafkajs `maxBytes`). */
  maxBytes?: number;
}

export const NGDB_SINK_DEFAULTS = {
  groupId: consumerGroups.ngdb,
  stage: 'ngdb',
  dedupTtlSeconds: 7 * 24 * 3600,
  partitionsConsumedConcurrently: 3,
  ...SOURCE_FETCH_BOUNDS,
} as const;

export interface NgdbSinkStats {
  /** Events decoded. */
  received: number;
  /** Events Redis said were stored before; not sent to PostgreSQL. */
  skipped: number;
  /** History rows added. */
  historyAdded: number;
  /** Events offered to PostgreSQL whose `_event_id` was already in the history (redeliveries). */
  duplicates: number;
  /** Current-state rows written (inserted, or replaced by a newer version). */
  applied: number;
  /** Newest-per-key rows the version guard kept out because the stored version was already newer or equal. */
  stale: number;
  /** Records sent to the DLQ. */
  rejected: number;
  /** Batches that failed for a retriable reason (registry or PostgreSQL unreachable); kafkajs retries them. */
  failedBatches: number;
  /** Source partitions found at start whose unread records were removed (the dataset's retention). */
  lostPositions: number;
}

interface Written {
  historyAdded: number;
  applied: number;
  collapsed: number;
}

/**
 * The National General Database sink (decree method (c)): every dataset of a dictionary, one consumer
 * group, one PostgreSQL schema. Per dataset a current-state table (`SinkTable`: versioned upsert,
 * delete-with-version tombstones) and an append-only `<table>_history` of every version.
 *
 * Per batch (one partition of one dataset; infra/kafka/batch-loop.ts): decode and check (bad records →
 * `lt.dlq.ngdb` with reason headers) → drop event ids Redis knows → one transaction: insert every event into
 * the history (`ON CONFLICT (_event_id) DO NOTHING`) and upsert the newest version per key into the current
 * state → remember the ids in Redis → DLQ → commit offsets. A replay changes nothing; a crash loses nothing.
 */
export class NgdbSink {
  readonly stats: NgdbSinkStats = {
    received: 0,
    skipped: 0,
    historyAdded: 0,
    duplicates: 0,
    applied: 0,
    stale: 0,
    rejected: 0,
    failedBatches: 0,
    lostPositions: 0,
  };
  /** History (and, through it, current-state) table per source topic. */
  readonly tables: ReadonlyMap<string, HistoryTable>;
  readonly groupId: string;
  private readonly consumer: Consumer;
  private readonly loop: BatchLoop;
  readonly metrics: PipelineMetrics;
  private readonly log: Logger;
  private readonly stage: string;
  private dedup: Deduplicator | null = null;
  private readonly fail: (error: LtError) => void;
  /** Resolves if the sink stops reading for good (LT_CONSUMER_STOPPED, with the cause); a service exits on it. */
  readonly failed: Promise<LtError>;

  private readonly options: NgdbSinkOptions;

  constructor(options: NgdbSinkOptions) {
    this.options = options;
    ({ failed: this.failed, fail: this.fail } = failureSignal());
    const datasets = [...options.dictionary.datasets.values()];
    if (datasets.length === 0)
      throw new LtError('LT_CONFIG_INVALID', 'the NGDB sink was given a dictionary without datasets');
    this.tables = new Map(datasets.map((dataset) => [topics.source(dataset.id), new HistoryTable(dataset)]));
    const names = [...this.tables.values()].map((table) => table.current.name);
    const clash = names.find((name, index) => names.indexOf(name) !== index);
    if (clash)
      throw new LtError('LT_CONFIG_INVALID', `two datasets map to the same NGDB table "${clash}"`, {
        hint: 'dataset ids that differ only by "." versus "-" cannot share one NGDB schema',
      });
    this.groupId = options.groupId ?? NGDB_SINK_DEFAULTS.groupId;
    this.stage = options.stage ?? NGDB_SINK_DEFAULTS.stage;
    this.log = options.log.child({ component: 'ngdb', group: this.groupId });
    this.consumer = options.kafka.consumer({
      groupId: this.groupId,
      allowAutoTopicCreation: false,
      maxBytesPerPartition: options.maxBytesPerPartition ?? NGDB_SINK_DEFAULTS.maxBytesPerPartition,
      maxBytes: options.maxBytes ?? NGDB_SINK_DEFAULTS.maxBytes,
    });
    watchConsumer(this.consumer, 'the NGDB sink', this.log, this.fail);
    this.metrics = options.metrics ?? new PipelineMetrics();
    this.loop = {
      consumer: this.consumer,
      sender: new IdempotentSender(options.kafka, this.log),
      log: this.log,
      group: this.groupId,
      metrics: this.metrics,
    };
  }

  /** The source topics it reads, one per dataset. */
  get topics(): string[] {
    return [...this.tables.keys()];
  }

  /** `lt.redrive.<stage>`: the dead letters an operator sends back (`lienthong dlq redrive`), read beside them. */
  get redriveTopic(): string {
    return topics.redrive(this.stage);
  }

  /**
   * Creates the tables (idempotent, safe with several instances starting at once), checks that every source
   * topic exists, creates the DLQ topic if needed, then starts consuming from the group's offsets (from the
   * beginning for a new group).
   */
  async start(): Promise<void> {
    await this.checkSourceTopics();
    await this.ensureDeadLetterTopic();
    const instance = await this.createTables();
    // The namespace names this database, not the group: a rebuild into an empty schema gets a new instance
    // id, so event ids Redis remembers from the old database cannot make it skip anything.
    this.dedup = new Deduplicator(
      this.options.redis,
      `ngdb:${instance}`,
      this.options.dedupTtlSeconds ?? NGDB_SINK_DEFAULTS.dedupTtlSeconds,
      this.log,
    );
    await this.loop.sender.connect();
    await this.reportLostPositions();
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.topics, this.redriveTopic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently:
        this.options.partitionsConsumedConcurrently ?? NGDB_SINK_DEFAULTS.partitionsConsumedConcurrently,
      eachBatch: async (payload) => {
        try {
          await this.handleBatch(payload);
        } catch (error) {
          this.stats.failedBatches += 1;
          this.log.warn(
            { err: error, topic: payload.batch.topic, partition: payload.batch.partition },
            'batch failed; it is read again from the last committed offset',
          );
          throw error;
        }
      },
    });
    this.log.info({ topics: this.topics.length, instance }, 'ngdb sink started');
  }

  /** Leaves the group after the batch in progress; its offsets are committed only if its transaction was. */
  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.loop.sender.disconnect();
  }

  private async checkSourceTopics(): Promise<void> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      const missing = this.topics.filter((topic) => !existing.has(topic));
      if (missing.length > 0) {
        throw new LtError('LT_CONFIG_INVALID', `source topics missing: ${missing.join(', ')}`, {
          details: { missing },
          hint: 'create each dataset’s topic before the NGDB sink reads it (the dictionary publish step does)',
        });
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * Says so, at error level, when a source topic no longer holds records this NGDB had not read (a dataset with
   * a bounded retention, read after a long stop): its history lacks them and its current state may be stale
   * for those keys. It goes on from the first record still held; the source of truth is the owner's system,
   * whose snapshot (`lienthong snapshot`) republishes the current state.
   */
  private async reportLostPositions(): Promise<void> {
    for (const topic of this.topics) {
      const lost = await lostPositions(this.options.kafka, this.groupId, topic).catch((error: unknown) => {
        // a broker still loading its groups, say: the check is a report, never a reason not to start
        this.log.warn(
          { err: error, topic },
          'could not compare the group’s positions with the topic’s log start',
        );
        return [];
      });
      if (lost.length === 0) continue;
      this.stats.lostPositions += lost.length;
      this.log.error(
        { topic, lost },
        'records this NGDB had not read were removed from a source topic (its retention): its history lacks ' +
          'them; ask the owner agency for a snapshot (lienthong snapshot) to restore the current state',
      );
    }
  }

  /**
   * `lt.dlq.<stage>` and `lt.redrive.<stage>` with the settings `lienthong topics sync` gives them (another
   * instance may race us: fine).
   */
  private async ensureDeadLetterTopic(): Promise<void> {
    await reconcileTopics(this.options.kafka, [
      deadLetterTopicSpec(this.stage, undefined, this.options.deadLetterRetentionDays),
      redriveTopicSpec(this.stage, this.options.deadLetterRetentionDays),
    ]);
  }

  /** Creates or evolves every table in one transaction; returns the id of this NGDB instance. */
  private async createTables(): Promise<string> {
    return inTransaction(this.options.pool, async (client) => {
      // concurrent CREATE TABLE IF NOT EXISTS of one name can still collide in pg_type
      await client.query(`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '.lt_ngdb_ddl'))`);
      await client.query(`CREATE TABLE IF NOT EXISTS lt_ngdb_instance (
  singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
  instance_id uuid NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now()
)`);
      await client.query(`INSERT INTO lt_ngdb_instance (instance_id) VALUES ($1) ON CONFLICT DO NOTHING`, [
        randomUUID(),
      ]);
      for (const history of this.tables.values()) {
        await client.query(history.current.createSql());
        for (const sql of history.evolveCurrentSql()) await client.query(sql);
        for (const sql of history.createSql()) await client.query(sql);
      }
      const { rows } = await client.query<{ id: string }>(
        'SELECT instance_id::text AS id FROM lt_ngdb_instance',
      );
      return rows[0]!.id;
    });
  }

  private async handleBatch(payload: EachBatchPayload): Promise<void> {
    const { topic } = payload.batch;
    if (topic === this.redriveTopic) return this.handleRedriveBatch(payload);
    const history = this.tables.get(topic);
    const dedup = this.dedup;
    if (!history || !dedup) throw new Error(`batch of ${topic}, which this sink does not read`);
    const outcome = await consumeBatch(
      payload,
      {
        stage: this.stage,
        read: async ({ value }) =>
          value === null // tombstone: the DELETE before it carried the version
            ? null
            : decodeSourceEvent(this.options.registry, history.dataset, topic, value),
        apply: (records, rejections) => this.apply(history, dedup, records, rejections),
      },
      this.loop,
    );
    if (outcome) {
      this.stats.received += outcome.read;
      this.stats.rejected += outcome.rejected;
    }
  }

  /**
   * A batch of redriven dead letters: each is read as the source record its `lt-source-*` headers name —
   * decoded and checked against that source topic's subject and dataset, exactly as when it was first read —
   * and written like one; a record refused again goes back to `lt.dlq.<stage>` naming the same source. One
   * that names no source topic this sink reads is refused (LT_RECORD_INVALID).
   */
  private async handleRedriveBatch(payload: EachBatchPayload): Promise<void> {
    const dedup = this.dedup;
    if (!dedup) throw new Error('redrive batch before the sink started');
    const outcome = await consumeBatch<{ history: HistoryTable; event: ChangeEvent }>(
      payload,
      {
        stage: this.stage,
        sourceOf: (message) => redrivenSourceOf(message.headers),
        read: async ({ headers, value }) => {
          const source = redrivenSourceOf(headers);
          const history = source ? this.tables.get(source.topic) : undefined;
          if (!source || !history)
            throw new LtError(
              'LT_RECORD_INVALID',
              `a redriven record must name a source topic this sink reads in lt-source-topic; it names ${source?.topic ?? 'none'}`,
            );
          if (value === null) return null;
          return {
            history,
            event: await decodeSourceEvent(this.options.registry, history.dataset, source.topic, value),
          };
        },
        apply: async (records, rejections) => {
          const byTable = new Map<HistoryTable, ReadRecord<ChangeEvent>[]>();
          for (const { item, message } of records)
            byTable.set(item.history, [...(byTable.get(item.history) ?? []), { item: item.event, message }]);
          for (const [history, some] of byTable) await this.apply(history, dedup, some, rejections);
        },
      },
      this.loop,
    );
    if (outcome) {
      this.stats.received += outcome.read;
      this.stats.rejected += outcome.rejected;
      this.log.info({ read: outcome.read, rejected: outcome.rejected }, 'redriven dead letters processed');
    }
  }

  /**
   * Drops the events Redis says were stored, writes the others in one transaction (one per event should
   * PostgreSQL refuse a row's values: the refused go to the DLQ), and tells Redis the ids stored.
   */
  private async apply(
    history: HistoryTable,
    dedup: Deduplicator,
    records: ReadRecord<ChangeEvent>[],
    rejections: BatchRejections,
  ): Promise<void> {
    const seen = await dedup.seen(records.map(({ item }) => item.eventId));
    if (dedup.enabled) this.metrics.countDedup(this.stage, records.length, seen.size);
    const fresh = records.filter(({ item }) => !seen.has(item.eventId));
    const { results, refused } = await writeIsolatingRefusals(fresh, (some) =>
      this.transaction(
        history,
        some.map(({ item }) => item),
      ),
    );
    for (const { item, error } of refused) rejections.reject(item.message, error);
    const refusedIds = new Set(refused.map(({ item }) => item.item.eventId));
    await dedup.remember(fresh.map(({ item }) => item.eventId).filter((id) => !refusedIds.has(id)));

    const offered = fresh.length - refused.length;
    const historyAdded = results.reduce((sum, one) => sum + one.historyAdded, 0);
    const applied = results.reduce((sum, one) => sum + one.applied, 0);
    const collapsed = results.reduce((sum, one) => sum + one.collapsed, 0);
    const labels = { dataset: history.dataset.id, agreement: '' };
    this.metrics.materialized.inc({ stage: this.stage, ...labels }, applied);
    this.metrics.observeLatency(
      this.stage,
      labels,
      fresh.filter(({ item }) => !refusedIds.has(item.eventId)).map(({ item }) => item.occurredAt),
    );
    this.stats.skipped += records.length - fresh.length;
    this.stats.historyAdded += historyAdded;
    this.stats.duplicates += offered - historyAdded;
    this.stats.applied += applied;
    this.stats.stale += collapsed - applied;
  }

  private transaction(history: HistoryTable, events: ChangeEvent[]): Promise<Written> {
    return inTransaction(this.options.pool, async (client: PoolClient) => {
      const added = await client.query(history.insertSql(), history.insertParams(events));
      const latest = new Map<string, ChangeEvent>();
      for (const event of events) {
        const current = latest.get(event.key);
        if (!current || event.version > current.version) latest.set(event.key, event);
      }
      const rows: SinkRow[] = [...latest.values()]
        .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
        .map((event) => history.current.row(event));
      const upserted = await client.query(history.current.upsertSql(), history.current.upsertParams(rows));
      return { historyAdded: added.rowCount ?? 0, applied: upserted.rowCount ?? 0, collapsed: latest.size };
    });
  }
}
