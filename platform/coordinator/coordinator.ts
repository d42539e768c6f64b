import type avro from 'avsc';
import type { Consumer, ConsumerConfig, EachBatchPayload, Kafka, Message } from 'kafkajs';
import { LtError, toLtError } from '../../infra/errors.ts';
import { deterministicUuidV7 } from '../../infra/ids.ts';
import { failureSignal, watchConsumer } from '../../infra/kafka/consumer-failure.ts';
import { lostPositions } from '../../infra/kafka/admin.ts';
import { IdempotentSender } from '../../infra/kafka/produce.ts';
import {
  consumeBatch,
  SOURCE_FETCH_BOUNDS,
  type BatchLoop,
  type BatchRejections,
  type ReadRecord,
} from '../../infra/kafka/batch-loop.ts';
import { reconcileTopics, shareTopicSpec } from '../../infra/kafka/provision.ts';
import { consumerGroups, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { PipelineMetrics } from '../../infra/observability/metrics.ts';
import { carryTrace } from '../../infra/observability/trace.ts';
import { inTransaction, type Pool } from '../../infra/postgres/pool.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import { decodeSourceEvent } from '../../schemas/envelope/check.ts';
import { agreementEndedHeaders } from '../../schemas/envelope/share-stream.ts';
import { getDataset, type Dictionary } from '../../schemas/model/dictionary.ts';
import { projectDataset } from '../../schemas/model/projection.ts';
import { registerTopicSchemas, type SchemaRegistry } from '../../schemas/registry/client.ts';
import { compileFilter, unsharedFilterFields } from '../agreements/filter.ts';
import { allowsMethod, isActive, type Agreement, type Degradation } from '../agreements/model.ts';
import { deadLetterTopics } from '../topics/plan.ts';
import { DutiesLease } from './duties.ts';
import { BACKFILL_FETCH_BOUNDS, LiveFirst } from './live-first.ts';
import { CoordinatorState, type KeyState, type StreamRef } from './state.ts';
import { deriveShare, messagesFor, streamKey, type ShareStream } from './stream.ts';

export interface CoordinatorOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  dictionary: Dictionary;
  /** The platform's PostgreSQL (migration set `platform`): membership and progress. */
  pool: Pool;
  /** The agreements as they stand now (the agreement store's list); re-read every `refreshMs`. */
  loadAgreements: () => Promise<Agreement[]>;
  log: Logger;
  /** The process's metrics (infra/observability); default: the coordinator's own, served nowhere. */
  metrics?: PipelineMetrics;
  /** Default `lt.coordinator`. */
  groupId?: string;
  /** How often agreements are re-read. Default 1000 ms. */
  refreshMs?: number;
  /**
   * Source partitions processed at once. Default 3: while one batch waits for PostgreSQL or the broker's
   * acknowledgement, another is decoded and filtered. Partitions share no keys, hence no membership rows.
   */
  partitionsConsumedConcurrently?: number;
  /** Days a dead letter is kept on the topics the coordinator provisions. Default 30. */
  deadLetterRetentionDays?: number;
  /**
   * Re-derives an agreement as a new revision (AgreementStore.resync). Called when its subscriber's position
   * fell below what the share topic still holds; without it, that is only logged.
   */
  resync?: (agreementId: string, reason: string) => Promise<void>;
  /** How often subscribers' positions are checked against their share topics. Default 30,000 ms. */
  positionCheckMs?: number;
  /**
   * How long the group waits for a silent coordinator before giving its partitions to the others
   * (kafkajs `sessionTimeout`). Default 30,000 ms.
   */
  sessionTimeoutMs?: number;
}

/** Revoked, expired, or approved but past its validity: its stream ends and its subscriber is told. */
function hasEnded(agreement: Agreement, now: Date = new Date()): boolean {
  if (agreement.status === 'revoked' || agreement.status === 'expired') return true;
  return (
    agreement.status === 'approved' &&
    agreement.validTo !== null &&
    agreement.validTo.getTime() <= now.getTime()
  );
}

/**
 * The main consumer's fetch bounds: half of SOURCE_FETCH_BOUNDS (infra/kafka/batch-loop.ts), since the coordinator
 * holds each record of a batch decoded and again encoded for every agreement that shares it until the broker
 * acknowledges them. Peak RSS draining a 200,000-event backlog 273–280 → 242 MB, a 1,000,000-event one
 * 295 → 263 MB, at the same rate and CPU (docs/benchmarks.md).
 */
const COORDINATOR_FETCH_BOUNDS = {
  maxBytesPerPartition: SOURCE_FETCH_BOUNDS.maxBytesPerPartition / 2,
  maxBytes: SOURCE_FETCH_BOUNDS.maxBytes / 2,
} as const;

/** An agreement whose stream cannot be prepared now: why, since when, and when it is tried again. */
export interface DegradedAgreement extends Degradation {
  agreementId: string;
}

/** Waits before trying a degraded agreement again: 1 s, doubling, at most a minute. */
const DEGRADED_BACKOFF_MS = { first: 1_000, max: 60_000 } as const;

export interface CoordinatorStats {
  /** Source events read. */
  read: number;
  /** Share events produced (tombstones not counted). */
  shared: number;
  /** Records sent to lt.dlq.coordinator. */
  rejected: number;
  /** Rewinds that failed and were left due for the next refresh. */
  rewindFailures: number;
  /** Source events skipped for an agreement as duplicates or older than the key's last version processed. */
  stale: number;
  /** Of `shared`, the share events produced by backfills (each on a consumer of its own). */
  backfilled: number;
}

/**
 * The coordinator (decree method (b)): consumes `lt.src.<dataset>` and, for every active agreement on that
 * dataset, filters rows, projects the agreed fields and produces to `lt.share.<agreement>`.
 *
 * - Membership per agreement (PostgreSQL) turns a record that leaves the filter into a DELETE for exactly
 *   the subscribers that had it; one that enters becomes a CREATE.
 * - Progress per agreement and partition: a newly approved agreement (or a new revision after its fields or
 *   filter changed) gets its history on a backfill consumer of its own, up to the end offsets captured when it
 *   appeared, while the main consumer derives it live from there beside every other agreement, whose delivery
 *   never waits for the history; per-key versions make the hand-over free of gaps and duplicates in effect.
 * - Share events are produced (idempotent producer, acks=all) before the state commit, and the Kafka offset
 *   is committed after it; a crash in between replays the batch with the same deterministic eventIds, which
 *   the subscriber's dedup and version guard absorb. kafkajs transactions are not used (see docs/coordinator.md).
 */
export class Coordinator {
  readonly stats: CoordinatorStats = {
    read: 0,
    shared: 0,
    rejected: 0,
    rewindFailures: 0,
    stale: 0,
    backfilled: 0,
  };
  private consumer: Consumer | null = null;
  /** Idempotent, partitions placed and each acknowledgement checked (infra/kafka/produce.ts says why). */
  private readonly sender: IdempotentSender;
  private readonly log: Logger;
  readonly metrics: PipelineMetrics;
  private streams = new Map<string, ShareStream[]>(); // by dataset id
  /** Agreements whose stream could not be prepared, by agreement id; the others flow meanwhile. */
  private readonly degradedById = new Map<string, DegradedAgreement>();
  /** What {@link recordDegraded} last wrote, to write only changes. */
  private recordedDegraded = '';
  private nextPositionCheck = 0;
  /** The lost positions each agreement was last re-derived for, so that one loss causes one resync. */
  private readonly resyncedFor = new Map<string, string>();
  private subscribed = new Set<string>();
  private assigned = new Map<string, number[]>();
  /** Source topics whose partitions must be sought back (a join, a new stream); a failed rewind stays here. */
  private readonly rewindsDue = new Set<string>();
  /** The backfill consumers this process runs, by `agreement#revision`. */
  private readonly backfillRunners = new Map<string, Consumer>();
  /** Log start offset per `topic:partition`, read at each rewind: where "from the beginning" starts. */
  private logStart = new Map<string, number>();
  private timer: NodeJS.Timeout | undefined;
  private refreshing: Promise<void> = Promise.resolve();
  private stopped = false;
  private readonly fail: (error: LtError) => void;
  /** Resolves if the coordinator stops reading for good (LT_CONSUMER_STOPPED, with the cause). */
  readonly failed: Promise<LtError>;

  /** Live batches before backfill batches (live-first.ts). */
  private readonly liveFirst = new LiveFirst();

  /** The once-only duties of several coordinators on one platform schema (duties.ts). */
  private readonly duties: DutiesLease;

  private readonly options: CoordinatorOptions;

  constructor(options: CoordinatorOptions) {
    this.options = options;
    ({ failed: this.failed, fail: this.fail } = failureSignal());
    this.log = options.log.child({ component: 'coordinator' });
    this.duties = new DutiesLease(options.pool, this.log);
    this.metrics = options.metrics ?? new PipelineMetrics();
    this.sender = new IdempotentSender(options.kafka, this.log);
  }

  /**
   * Provisions the dead-letter topics — the platform's stages and every agency's `ingest` and `sink` (an Agent
   * Node does not create topics) — with the settings of `lienthong topics sync`, then derives the active
   * agreements.
   */
  async start(): Promise<void> {
    await reconcileTopics(
      this.options.kafka,
      deadLetterTopics(this.options.dictionary, this.options.deadLetterRetentionDays),
    );
    await this.sender.connect();
    await this.refresh();
    this.timer = setInterval(() => {
      this.refreshing = this.refreshing
        .then(() => this.refresh())
        .catch((error: unknown) => this.log.warn({ err: error }, 'refresh failed'));
    }, this.options.refreshMs ?? 1000);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.refreshing;
    await this.consumer?.disconnect();
    for (const consumer of this.backfillRunners.values()) await consumer.disconnect();
    this.backfillRunners.clear();
    await this.sender.disconnect();
    await this.duties.release();
  }

  /** The agreements whose stream cannot be prepared now (each retried with backoff), as of the last refresh. */
  get degraded(): DegradedAgreement[] {
    return [...this.degradedById.values()];
  }

  /**
   * The agreement's stream, or null while it cannot be prepared (source topic missing, dataset gone from the
   * dictionary, a share subject the registry refuses, …): the agreement is marked degraded with the reason and
   * tried again with backoff; the other agreements are not held up by it.
   */
  private async prepareIsolated(
    agreement: Agreement,
    others: readonly StreamRef[],
    fromStart: Set<string>,
  ): Promise<ShareStream | null> {
    const earlier = this.degradedById.get(agreement.id);
    const now = Date.now();
    if (earlier && earlier.revision === agreement.revision && now < earlier.nextAttemptAt.getTime())
      return null;
    try {
      const stream = await this.prepare(agreement, others, fromStart);
      if (earlier) {
        this.degradedById.delete(agreement.id);
        this.log.info({ agreement: agreement.id, revision: agreement.revision }, 'agreement recovered');
      }
      return stream;
    } catch (error) {
      const failure = toLtError(error);
      const attempts = earlier && earlier.revision === agreement.revision ? earlier.attempts + 1 : 1;
      const wait = Math.min(DEGRADED_BACKOFF_MS.first * 2 ** (attempts - 1), DEGRADED_BACKOFF_MS.max);
      this.degradedById.set(agreement.id, {
        agreementId: agreement.id,
        revision: agreement.revision,
        reason: failure.message,
        code: failure.code,
        since: earlier?.since ?? new Date(now),
        attempts,
        nextAttemptAt: new Date(now + wait),
      });
      this.log.warn(
        { agreement: agreement.id, revision: agreement.revision, attempts, retryInMs: wait, err: error },
        'agreement degraded: its stream cannot be prepared',
      );
      return null;
    }
  }

  /**
   * Writes the degraded agreements to `agreement_degraded` when they changed since the last write, so that
   * `agreement show`, the agreements API and the catalog can say why an agreement receives nothing. A failed
   * write (PostgreSQL may be why it is degraded) is logged and tried again at the next refresh.
   */
  private async recordDegraded(): Promise<void> {
    const degraded = this.degraded;
    const snapshot = JSON.stringify(
      degraded.map((entry) => [entry.agreementId, entry.revision, entry.attempts]),
    );
    if (snapshot === this.recordedDegraded) return;
    try {
      await this.options.pool.query(
        `WITH gone AS (DELETE FROM agreement_degraded WHERE NOT (agreement_id = ANY($1::text[])))
         INSERT INTO agreement_degraded (agreement_id, revision, code, reason, since, attempts, next_attempt_at)
         SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::timestamptz[], $6::int[], $7::timestamptz[])
         ON CONFLICT (agreement_id) DO UPDATE SET revision = EXCLUDED.revision, code = EXCLUDED.code,
           reason = EXCLUDED.reason, since = EXCLUDED.since, attempts = EXCLUDED.attempts,
           next_attempt_at = EXCLUDED.next_attempt_at, updated_at = now()`,
        [
          degraded.map((entry) => entry.agreementId),
          degraded.map((entry) => entry.revision),
          degraded.map((entry) => entry.code),
          degraded.map((entry) => entry.reason.slice(0, 2_000)),
          degraded.map((entry) => entry.since),
          degraded.map((entry) => entry.attempts),
          degraded.map((entry) => entry.nextAttemptAt),
        ],
      );
      this.recordedDegraded = snapshot;
    } catch (error) {
      this.log.warn({ err: error }, 'could not record the degraded agreements; retried at the next refresh');
    }
  }

  /**
   * A subscriber whose committed position on its share topic is below the log start offset lost records it
   * never read (it was offline longer than the topic kept them, or records were deleted): its copy may keep
   * rows it must no longer hold and lack changes. The agreement is re-derived as a new revision, whose records
   * replace every row, and whose retirement of the earlier revision deletes every key it no longer shares.
   */
  private async checkSubscriberPositions(streams: readonly ShareStream[]): Promise<void> {
    for (const stream of streams) {
      try {
        const group = consumerGroups.subscription(stream.agreement.subscriber, stream.agreementId);
        const lost = await lostPositions(this.options.kafka, group, stream.topic);
        if (lost.length === 0) continue;
        const signature = JSON.stringify(lost.map(({ partition, logStart }) => [partition, logStart]));
        if (this.resyncedFor.get(stream.agreementId) === signature) continue;
        const reason =
          `subscriber ${stream.agreement.subscriber} lost records of ${stream.topic} it never read ` +
          `(${lost.map((p) => `partition ${p.partition}: committed ${p.committed}, first held ${p.logStart}`).join('; ')})`;
        this.log.error({ agreement: stream.agreementId, group, lost }, reason);
        if (!this.options.resync) continue;
        await this.options.resync(stream.agreementId, reason);
        this.resyncedFor.set(stream.agreementId, signature);
        this.log.warn({ agreement: stream.agreementId }, 'agreement re-derived as a new revision (resync)');
      } catch (error) {
        this.log.warn(
          { err: error, agreement: stream.agreementId },
          'could not check the subscriber position',
        );
      }
    }
  }

  /** Re-reads agreements; prepares new streams; re-subscribes or rewinds partitions when they changed. */
  private async refresh(): Promise<void> {
    if (this.stopped) return;
    // only an agreement with method sync (b) has a stream; a query-only or media-only one never had one
    const all = (await this.options.loadAgreements()).filter((agreement) => allowsMethod(agreement, 'sync'));
    const active = all.filter((agreement) => isActive(agreement));
    // several coordinators may share the platform schema: one of them does what must happen once
    const duties = await this.duties.held();
    if (duties) await this.announceEnded(all.filter((agreement) => hasEnded(agreement)));
    const next = new Map<string, ShareStream[]>();
    const previous = new Map([...this.streams.values()].flat().map((stream) => [streamKey(stream), stream]));
    const fromStart = new Set<string>();
    for (const agreement of active) {
      const ref = { agreementId: agreement.id, revision: agreement.revision };
      let stream = previous.get(streamKey(ref)) ?? null;
      if (!stream) {
        // the other streams of the dataset, but those this refresh starts from the log start (nothing is live there)
        const others = active
          .filter((other) => other.dataset === agreement.dataset && other.id !== agreement.id)
          .map((other) => ({ agreementId: other.id, revision: other.revision }))
          .filter((other) => !fromStart.has(streamKey(other)));
        stream = await this.prepareIsolated(agreement, others, fromStart);
      }
      if (stream) next.set(agreement.dataset, [...(next.get(agreement.dataset) ?? []), stream]);
    }
    const activeIds = new Set(active.map((agreement) => agreement.id));
    for (const id of this.degradedById.keys()) if (!activeIds.has(id)) this.degradedById.delete(id);
    if (duties) await this.recordDegraded();
    this.metrics.degradedAgreements.set(this.degradedById.size);
    if (duties && Date.now() >= this.nextPositionCheck) {
      this.nextPositionCheck = Date.now() + (this.options.positionCheckMs ?? 30_000);
      await this.checkSubscriberPositions([...next.values()].flat());
    }
    const changedDatasets = new Set(
      [...new Set([...next.keys(), ...this.streams.keys()])].filter(
        (id) =>
          (next.get(id) ?? []).map(streamKey).sort().join() !==
          (this.streams.get(id) ?? []).map(streamKey).sort().join(),
      ),
    );
    this.streams = next;
    await this.runBackfills();
    const wanted = new Set([...next.keys()].map((id) => topics.source(id)));
    if (wanted.size !== this.subscribed.size || [...wanted].some((topic) => !this.subscribed.has(topic))) {
      await this.resubscribe(wanted);
      return; // a fresh join rewinds every assigned partition
    }
    for (const datasetId of changedDatasets) this.rewindsDue.add(topics.source(datasetId));
    await this.rewindDue();
    if (duties) for (const stream of [...next.values()].flat()) await this.retireEarlierRevisions(stream);
  }

  /**
   * Once a new revision of an agreement has caught up with every source partition, the keys only the
   * earlier revision had shared are deleted from the subscriber's copy, and the earlier membership dropped.
   */
  private async retireEarlierRevisions(stream: ShareStream): Promise<void> {
    const { rows: earlier } = await this.options.pool.query<{ n: string }>(
      'SELECT count(*) AS n FROM agreement_membership WHERE agreement_id = $1 AND revision < $2',
      [stream.agreementId, stream.revision],
    );
    if (Number(earlier[0]?.n ?? 0) === 0) return;
    const source = topics.source(stream.agreement.dataset);
    const admin = this.options.kafka.admin();
    await admin.connect();
    const ends = await admin.fetchTopicOffsets(source).finally(() => admin.disconnect());
    const client = await this.options.pool.connect();
    try {
      const { rows: behind } = await client.query<{ partition: number; next_offset: string }>(
        'SELECT partition, next_offset FROM agreement_progress WHERE agreement_id = $1 AND revision = $2 AND topic = $3',
        [stream.agreementId, stream.revision, source],
      );
      const { rows: history } = await client.query<{
        partition: number;
        until_offset: string;
        next_offset: string;
      }>(
        'SELECT partition, until_offset, next_offset FROM agreement_backfill WHERE agreement_id = $1 AND revision = $2 AND topic = $3',
        [stream.agreementId, stream.revision, source],
      );
      const backfill = new Map(history.map((row) => [row.partition, row]));
      const done = new Map(behind.map((row) => [row.partition, Number(row.next_offset)]));
      const caughtUp = (partition: number, high: number): boolean => {
        const own = backfill.get(partition);
        if (!own) return (done.get(partition) ?? 0) >= high;
        // its history on the backfill consumer, the rest live from `until`
        const until = Number(own.until_offset);
        return Number(own.next_offset) >= until && Math.max(done.get(partition) ?? until, until) >= high;
      };
      if (ends.some((end) => Number(end.high) > 0 && !caughtUp(end.partition, Number(end.high)))) return; // still catching up
      await client.query('BEGIN');
      const { rows: gone } = await client.query<{ key: string }>(
        // every key an earlier revision shared or once shared (a subscriber that lost records may still hold
        // one whose DELETE it never read), unless the new revision shares it now
        `SELECT DISTINCT old.key FROM agreement_membership old
          WHERE old.agreement_id = $1 AND old.revision < $2
            AND NOT EXISTS (SELECT 1 FROM agreement_membership now
                             WHERE now.agreement_id = $1 AND now.revision = $2 AND now.key = old.key
                               AND now.member)`,
        [stream.agreementId, stream.revision],
      );
      const owner = getDataset(this.options.dictionary, stream.agreement.dataset).owner;
      const messages = gone.flatMap(({ key }) =>
        messagesFor(stream, {
          eventId: deterministicUuidV7(
            new Date(stream.agreement.updatedAt),
            `${stream.agreementId}/${stream.revision}/retire/${key}`,
          ),
          dataset: stream.agreement.dataset,
          op: 'DELETE',
          key,
          version: 0,
          occurredAt: new Date(),
          sourceAgency: owner,
          traceId: `retire-${stream.agreementId}-${stream.revision}`,
          after: null,
        }),
      );
      if (messages.length > 0) await this.sender.send({ topicMessages: [{ topic: stream.topic, messages }] });
      await client.query('DELETE FROM agreement_membership WHERE agreement_id = $1 AND revision < $2', [
        stream.agreementId,
        stream.revision,
      ]);
      await client.query('DELETE FROM agreement_progress WHERE agreement_id = $1 AND revision < $2', [
        stream.agreementId,
        stream.revision,
      ]);
      for (const table of ['agreement_backfill', 'agreement_backfill_seen'])
        await client.query(`DELETE FROM ${table} WHERE agreement_id = $1 AND revision < $2`, [
          stream.agreementId,
          stream.revision,
        ]);
      await client.query('COMMIT');
      this.log.info(
        { agreement: stream.agreementId, revision: stream.revision, deleted: gone.length },
        'earlier revision retired',
      );
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  /**
   * Tells the subscriber of each revoked or expired agreement, once, that its stream ended and whether to
   * purge or retain its copy: a control record on every partition of the share topic
   * (headers `lt-control: agreement-ended`, `lt-end-policy`), after which nothing more is produced there.
   */
  private async announceEnded(ended: Agreement[]): Promise<void> {
    if (ended.length === 0) return;
    const { rows } = await this.options.pool.query<{ agreement_id: string }>(
      'SELECT agreement_id FROM agreement_end_notice WHERE agreement_id = ANY($1::text[])',
      [ended.map((agreement) => agreement.id)],
    );
    const told = new Set(rows.map((row) => row.agreement_id));
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const existing = new Set(await admin.listTopics());
      for (const agreement of ended.filter((candidate) => !told.has(candidate.id))) {
        const topic = topics.share(agreement.id);
        if (existing.has(topic)) {
          const [metadata] = (await admin.fetchTopicMetadata({ topics: [topic] })).topics;
          const headers = agreementEndedHeaders(agreement.id, agreement.onEnd);
          // one control record per partition, each acknowledged (sendBounded checks it, kafkajs#1303)
          await this.sender.send({
            topicMessages: [
              {
                topic,
                messages: (metadata?.partitions ?? []).map(({ partitionId }) => ({
                  partition: partitionId,
                  key: null,
                  value: null,
                  headers,
                })),
              },
            ],
          });
        }
        await this.options.pool.query(
          'INSERT INTO agreement_end_notice (agreement_id, revision, policy) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [agreement.id, agreement.revision, agreement.onEnd],
        );
        this.log.info(
          { agreement: agreement.id, policy: agreement.onEnd },
          'agreement ended; subscriber told',
        );
      }
    } finally {
      await admin.disconnect();
    }
  }

  /**
   * `others`: the other active agreements of its dataset, at their revisions; the stream's key is added to
   * `fromStart` when the main consumer is to derive it from the log start (state.ts decideHistory).
   */
  private async prepare(
    agreement: Agreement,
    others: readonly StreamRef[],
    fromStart: Set<string>,
  ): Promise<ShareStream> {
    const dataset = getDataset(this.options.dictionary, agreement.dataset);
    const unshared = unsharedFilterFields(agreement.filter, agreement.fields);
    if (unshared.length > 0)
      // approved before filters were held to the shared fields: derived, it would leak those fields
      throw new LtError(
        'LT_AGREEMENT_INVALID',
        `agreement ${agreement.id} filters on ${unshared.join(', ')}, which it does not share; update its fields or filter`,
        { details: { agreement: agreement.id, unshared } },
      );
    const projected = projectDataset(dataset, agreement.fields);
    const topic = topics.share(agreement.id);
    const source = topics.source(dataset.id);
    const admin = this.options.kafka.admin();
    await admin.connect();
    const partitions = await admin
      .fetchTopicMetadata({ topics: [source] })
      .then((metadata) => metadata.topics[0]?.partitions.length ?? 1)
      .finally(() => admin.disconnect());
    await reconcileTopics(this.options.kafka, [shareTopicSpec(agreement.id, partitions)]);
    // A revision may drop or add fields: the subscriber re-derives its copy, so share subjects are NONE.
    const registered = await registerTopicSchemas(this.options.registry, topic, projected, 'NONE');
    const [keyType, valueType] = await Promise.all([
      this.options.registry.getSchema(registered.keySchemaId),
      this.options.registry.getSchema(registered.valueSchemaId),
    ]);
    // a new stream's history goes to a consumer of its own when other streams of the dataset are live (a rewind
    // would stall them); live delivery takes it from the end offsets now
    const ref = { agreementId: agreement.id, revision: agreement.revision };
    const offsets = await this.sourceOffsets(source);
    const history = await inTransaction(this.options.pool, (client) =>
      new CoordinatorState(client).decideHistory(ref, source, offsets, others),
    );
    if (history === 'fromStart') fromStart.add(streamKey(ref));
    this.log.info(
      { agreement: agreement.id, revision: agreement.revision, topic, history },
      'share stream ready',
    );
    return {
      agreementId: agreement.id,
      revision: agreement.revision,
      agreement,
      topic,
      projected,
      matches: compileFilter(agreement.filter, dataset),
      keySchemaId: registered.keySchemaId,
      keyType: keyType as unknown as avro.Type,
      valueSchemaId: registered.valueSchemaId,
      valueType: valueType as unknown as avro.Type,
    };
  }

  /** The settings of the coordinator's consumers, live and backfill, with bounded fetches. */
  private consumerConfig(
    groupId: string,
    bounds: { maxBytesPerPartition: number; maxBytes: number } = COORDINATOR_FETCH_BOUNDS,
  ): ConsumerConfig {
    return {
      groupId,
      allowAutoTopicCreation: false,
      ...bounds,
      ...(this.options.sessionTimeoutMs === undefined
        ? {}
        : { sessionTimeout: this.options.sessionTimeoutMs }),
    };
  }

  private async resubscribe(wanted: Set<string>): Promise<void> {
    await this.consumer?.disconnect();
    this.consumer = null;
    this.subscribed = wanted;
    this.assigned.clear();
    if (wanted.size === 0) return;
    const consumer = this.options.kafka.consumer(
      this.consumerConfig(this.options.groupId ?? consumerGroups.coordinator),
    );
    watchConsumer(consumer, 'the coordinator', this.log, this.fail);
    this.consumer = consumer; // before run: the first join (inside run) seeks through it
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      this.assigned = new Map(Object.entries(payload.memberAssignment));
      for (const topic of this.assigned.keys()) this.rewindsDue.add(topic);
      void this.rewindDue();
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [...wanted], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 3,
      eachBatch: (payload) =>
        this.liveFirst.live(Number(payload.batch.messages.at(-1)?.timestamp), () =>
          this.handleBatch(payload, {
            consumer,
            sender: this.sender,
            log: this.log,
            group: this.options.groupId ?? consumerGroups.coordinator,
            metrics: this.metrics,
          }),
        ),
    });
  }

  /** Each partition's log start and end offsets of a source topic; the log starts are kept for the batches. */
  private async sourceOffsets(topic: string): Promise<{ partition: number; low: number; high: number }[]> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    const offsets = await admin.fetchTopicOffsets(topic).finally(() => admin.disconnect());
    for (const { partition, low } of offsets) this.logStart.set(`${topic}:${partition}`, Number(low));
    return offsets.map(({ partition, low, high }) => ({ partition, low: Number(low), high: Number(high) }));
  }

  /**
   * Runs a backfill consumer for every active stream whose backfill is incomplete (in every coordinator: the
   * backfill's group shares its partitions among them), stops those whose backfill is complete or whose stream is
   * no longer active, and drops the versions complete backfills no longer need. Never throws: what failed is
   * tried again at the next refresh.
   */
  private async runBackfills(): Promise<void> {
    const streams = [...this.streams.values()].flat();
    try {
      const { rows } = await this.options.pool.query<{
        agreement_id: string;
        revision: number;
        done: boolean;
      }>(
        `SELECT agreement_id, revision, bool_and(next_offset >= until_offset) AS done FROM agreement_backfill
          WHERE (agreement_id, revision) IN (SELECT * FROM unnest($1::text[], $2::int[]))
          GROUP BY agreement_id, revision`,
        [streams.map((stream) => stream.agreementId), streams.map((stream) => stream.revision)],
      );
      const due = new Set(
        rows.filter((row) => !row.done).map((row) => `${row.agreement_id}#${row.revision}`),
      );
      for (const [key, consumer] of [...this.backfillRunners]) {
        if (due.has(key)) continue;
        this.backfillRunners.delete(key);
        await consumer.disconnect();
        this.log.info({ stream: key }, 'backfill consumer stopped');
      }
      const done = rows.filter((row) => row.done);
      if (done.length > 0)
        await this.options.pool.query(
          `DELETE FROM agreement_backfill_seen
            WHERE (agreement_id, revision) IN (SELECT * FROM unnest($1::text[], $2::int[]))`,
          [done.map((row) => row.agreement_id), done.map((row) => row.revision)],
        );
      for (const stream of streams)
        if (due.has(streamKey(stream)) && !this.backfillRunners.has(streamKey(stream)))
          await this.startBackfillConsumer(stream);
    } catch (error) {
      this.log.warn({ err: error }, 'backfills could not be run; tried again at the next refresh');
    }
  }

  /**
   * The backfill of one stream, on a consumer of its own (group `lt.coordinator.backfill.<agreement>.<revision>`):
   * it reads the source topic from its log start and derives that stream alone up to the `until` offsets captured
   * when the stream appeared, pausing each partition once past them, while the main consumer goes on delivering
   * every stream live.
   */
  private async startBackfillConsumer(stream: ShareStream): Promise<void> {
    const key = streamKey(stream);
    const source = topics.source(stream.agreement.dataset);
    const groupId = consumerGroups.coordinatorBackfill(stream.agreementId, stream.revision);
    await this.sourceOffsets(source); // where the history starts now
    const { rows } = await this.options.pool.query<{ partition: number; until_offset: string }>(
      'SELECT partition, until_offset FROM agreement_backfill WHERE agreement_id = $1 AND revision = $2 AND topic = $3',
      [stream.agreementId, stream.revision, source],
    );
    const until = new Map(rows.map((row) => [row.partition, Number(row.until_offset)]));
    const consumer = this.options.kafka.consumer(this.consumerConfig(groupId, BACKFILL_FETCH_BOUNDS));
    watchConsumer(consumer, `the backfill of ${stream.agreementId}`, this.log, this.fail);
    this.backfillRunners.set(key, consumer);
    const loop: BatchLoop = {
      consumer,
      sender: this.sender,
      log: this.log,
      group: groupId,
      metrics: this.metrics,
    };
    try {
      await consumer.connect();
      await consumer.subscribe({ topics: [source], fromBeginning: true });
      await consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 3,
        eachBatch: async (payload) => {
          const { batch } = payload;
          if (batch.isEmpty()) return;
          const end = until.get(batch.partition) ?? 0;
          if (Number(batch.firstOffset()) >= end) {
            // past the history (the consumer reads on from where it committed): live delivery has the rest
            await this.options.pool.query(
              `UPDATE agreement_backfill SET next_offset = GREATEST(next_offset, until_offset), updated_at = now()
                WHERE agreement_id = $1 AND revision = $2 AND topic = $3 AND partition = $4`,
              [stream.agreementId, stream.revision, source, batch.partition],
            );
            payload.pause();
            return;
          }
          // live delivery first: the history takes what live batches leave (live-first.ts)
          await this.liveFirst.quiet(payload.heartbeat, () => payload.isRunning() && !payload.isStale());
          await this.handleBatch(payload, loop, stream);
        },
      });
      this.log.info(
        { agreement: stream.agreementId, revision: stream.revision, groupId },
        'backfill started',
      );
    } catch (error) {
      this.backfillRunners.delete(key);
      await consumer.disconnect().catch(() => undefined);
      throw error;
    }
  }

  /**
   * Rewinds every topic that is due; one that fails (PostgreSQL or the broker unreachable) stays due and is
   * tried again at the next refresh, so a newly approved agreement always gets its backfill. Never throws.
   */
  private async rewindDue(): Promise<void> {
    for (const topic of [...this.rewindsDue]) {
      const partitions = this.assigned.get(topic);
      if (!partitions) {
        this.rewindsDue.delete(topic); // not ours now; a join brings it back
        continue;
      }
      try {
        await this.rewind(topic, partitions);
        this.rewindsDue.delete(topic);
      } catch (error) {
        this.stats.rewindFailures++;
        this.log.warn({ err: error, topic }, 'rewind failed; retried at the next refresh');
      }
    }
  }

  /** Seeks partitions to the lowest offset any active stream of the topic still needs. */
  private async rewind(topic: string, partitions: number[]): Promise<void> {
    const datasetId = topic.slice('lt.src.'.length);
    const streams = this.streams.get(datasetId) ?? [];
    if (!this.consumer || streams.length === 0) return;
    await this.sourceOffsets(topic);
    const client = await this.options.pool.connect();
    try {
      const state = new CoordinatorState(client);
      for (const partition of partitions) {
        const progress = await state.progress(streams, topic, partition);
        const backfills = await state.backfills(streams, topic, partition);
        // a stream with a backfill is live from its `until` on: its history is on a consumer of its own
        const lowest = Math.min(
          ...streams.map((stream) => {
            const floor = backfills.get(streamKey(stream))?.until ?? 0;
            return Math.max(progress.get(streamKey(stream)) ?? floor, floor);
          }),
        );
        this.consumer.seek({ topic, partition, offset: String(lowest) });
        // every stream has what lies below `lowest` (processed, or its backfill's): the group's position says so,
        // so its lag does not count a history that only a backfill consumer reads
        await this.consumer
          .commitOffsets([{ topic, partition, offset: String(lowest) }])
          .catch((error: unknown) =>
            this.log.debug({ err: error, topic, partition }, 'could not commit the rewound position'),
          );
      }
    } finally {
      client.release();
    }
  }

  /**
   * One batch of the main consumer (every stream of the dataset, live), or of one stream's backfill consumer
   * (`backfill`: that stream alone, over its history).
   */
  private async handleBatch(
    payload: EachBatchPayload,
    loop: BatchLoop,
    backfill?: ShareStream,
  ): Promise<void> {
    const { topic, partition } = payload.batch;
    const datasetId = topic.slice('lt.src.'.length);
    const dataset = this.options.dictionary.datasets.get(datasetId);
    const streams = backfill ? [backfill] : (this.streams.get(datasetId) ?? []);
    let shared = 0;
    const outcome = await consumeBatch(
      payload,
      {
        stage: 'coordinator',
        // undecodable, a schema not of the topic, or an envelope that is not the topic's (another dataset, a
        // key not the record's own, an agency that does not own the dataset): nothing the NGDB refuses is shared
        read: async ({ value }) =>
          value === null // tombstone: the DELETE before it carried the version
            ? null
            : decodeSourceEvent(this.options.registry, dataset, topic, value),
        apply: async (records, rejections) => {
          const next = Number(payload.batch.lastOffset()) + 1;
          const first = Number(payload.batch.firstOffset());
          shared = await this.share(
            streams,
            { topic, partition, first, next },
            records,
            rejections,
            backfill ? 'backfill' : 'live',
          );
        },
      },
      loop,
    );
    if (!outcome) return;
    this.stats.read += outcome.read;
    this.stats.shared += shared;
    if (backfill) this.stats.backfilled += shared;
    this.stats.rejected += outcome.rejected;
  }

  /**
   * Derives the batch's events in one PostgreSQL transaction (membership, progress), sends the share records and
   * the batch's dead letters, then commits that transaction; returns the share events produced. A record one
   * agreement cannot take is dead-lettered for that agreement alone.
   *
   * `live` (the main consumer): every stream of the dataset, each from its progress — for a stream with a backfill,
   * from the backfill's `until` on. `backfill` (a stream's own consumer): that stream alone, over
   * [log start, until). While a partition's backfill is incomplete, the live side may reach a key before the
   * backfill reaches its history: it records the version of each key it processed that the stream does not share
   * (`agreement_backfill_seen`; a shared one is recorded in the membership anyway), and both sides skip a version
   * not above the one recorded, so the history never overwrites what live delivery already told the subscriber.
   */
  private async share(
    streams: ShareStream[],
    at: { topic: string; partition: number; first: number; next: number },
    records: ReadRecord<ChangeEvent>[],
    rejections: BatchRejections,
    mode: 'live' | 'backfill' = 'live',
  ): Promise<number> {
    const { topic, partition, first, next } = at;
    const out = new Map<string, Message[]>();
    let shared = 0;
    const client = await this.options.pool.connect();
    try {
      await client.query('BEGIN');
      const state = new CoordinatorState(client);
      await state.lockPartition(topic, partition); // a member the partition just left may still be on it
      const progress = await state.progress(streams, topic, partition);
      const backfills = await state.backfills(streams, topic, partition);
      const logStart = this.logStart.get(`${topic}:${partition}`) ?? 0;
      for (const stream of streams) {
        const backfill = backfills.get(streamKey(stream));
        let start: number;
        let end = Infinity;
        if (mode === 'backfill') {
          if (!backfill) continue;
          start = Math.max(backfill.next, logStart);
          end = backfill.until;
          if (start >= end) {
            // this partition's history is done (or gone below the log start); live delivery has the rest
            if (backfill.next < end) await state.advanceBackfill(stream, topic, partition, end);
            continue;
          }
        } else {
          const floor = backfill?.until ?? 0;
          start = Math.max(progress.get(streamKey(stream)) ?? floor, floor, logStart);
        }
        // Nothing new for this stream, or a batch fetched before a rewind that skips past where this stream
        // must begin: the rewind brings those offsets next.
        if (next <= start || first > start) continue;
        const items = records.filter(({ message }) => {
          const offset = Number(message.offset);
          return offset >= start && offset < end;
        });
        const keys = [...new Set(items.map(({ item }) => item.key))];
        const states = await state.states(stream, keys);
        // the live side ahead of an unfinished backfill, or the backfill behind it: versions live delivery took
        const racing = backfill !== undefined && backfill.next < backfill.until;
        const seen = racing ? await state.seen(stream, keys) : new Map<string, number>();
        const newlySeen = new Map<string, number>();
        const changed = new Map<string, KeyState>();
        const messages = out.get(stream.topic) ?? [];
        for (const { item: event, message } of items) {
          const known = changed.get(event.key) ?? states.get(event.key);
          const seenVersion = newlySeen.get(event.key) ?? seen.get(event.key);
          // a duplicate, or an older version arriving late: the subscriber's version guard would refuse it,
          // and taking it here would make the membership say what the subscriber does not hold
          if (
            (known?.version != null && event.version <= known.version) ||
            (seenVersion !== undefined && event.version <= seenVersion)
          ) {
            this.stats.stale++;
            continue;
          }
          const derived = deriveShare(stream, event, known);
          if (derived instanceof LtError) {
            rejections.reject(message, derived, stream.agreementId); // for this agreement only; the others go on
            continue;
          }
          // keys it shares or once shared keep their last version; others it never needed stay unrecorded
          if (derived !== null)
            changed.set(event.key, {
              member: derived.digest !== null,
              digest: derived.digest,
              version: event.version,
            });
          else if (known) changed.set(event.key, { ...known, version: event.version });
          else if (racing) newlySeen.set(event.key, event.version);
          if (derived === null) continue;
          // the source record's trace goes on with the share record (a span of its own)
          messages.push(...carryTrace(message.headers, event.traceId, derived.messages));
          shared++;
          this.metrics.shared.inc({ dataset: event.dataset, agreement: stream.agreementId });
        }
        out.set(stream.topic, messages);
        await state.apply(stream, changed);
        await state.recordSeen(stream, newlySeen);
        if (mode === 'backfill') await state.advanceBackfill(stream, topic, partition, Math.min(next, end));
        else await state.advance(stream, topic, partition, next);
      }
      // the dead letters go with the share records, before the state commit: once it is committed, a replay of
      // this batch skips these streams, and a record refused for one agreement would be lost
      const topicMessages = [
        ...[...out]
          .filter(([, messages]) => messages.length > 0)
          .map(([shareTopic, messages]) => ({ topic: shareTopic, messages })),
        ...rejections.deadLetters.take(),
      ];
      if (topicMessages.length > 0) await this.sender.send({ topicMessages });
      await client.query('COMMIT');
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
    return shared;
  }
}
