import { Counter, Gauge, Histogram, Registry } from 'prom-client';

/** Where a record was in the pipeline; the `stage` label of the series below. */
export type Stage = string;

/** The dataset and agreement a series is about; '' where one does not apply (an NGDB row has no agreement). */
export interface StreamLabels {
  dataset: string;
  agreement: string;
}

/** Seconds from a change's `occurredAt` to the commit of its row: 10 ms … 1 h. */
const LATENCY_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];
/** Records in one consumed batch. */
const BATCH_BUCKETS = [1, 5, 10, 50, 100, 250, 500, 1000, 2500, 5000];

/**
 * Every Prometheus series of one lienthong process, on a registry of its own (never prom-client's global
 * default, so that tests can run several services in one process). Names are `lienthong_<what>_<unit>`;
 * docs/observability.md lists each with its labels and meaning. A component given none makes its own, so its
 * code counts unconditionally; a process shares one between its components and serves it on `/metrics`.
 */
export class PipelineMetrics {
  readonly registry = new Registry();

  /** Change events the source side published (acknowledged by the broker), per dataset. */
  readonly produced = new Counter({
    name: 'lienthong_produced_records_total',
    help: 'Change events published to lt.src.<dataset> and acknowledged by the broker',
    labelNames: ['dataset'] as const,
    registers: [this.registry],
  });

  /** Kafka records a consuming stage read (tombstones and control records included). */
  readonly consumed = new Counter({
    name: 'lienthong_consumed_records_total',
    help: 'Kafka records a consuming stage read and committed',
    labelNames: ['stage', 'dataset', 'agreement'] as const,
    registers: [this.registry],
  });

  /** Change events the coordinator derived onto a share stream, per dataset and agreement. */
  readonly shared = new Counter({
    name: 'lienthong_shared_records_total',
    help: 'Change events the coordinator derived onto lt.share.<agreement>',
    labelNames: ['dataset', 'agreement'] as const,
    registers: [this.registry],
  });

  /** Rows a sink wrote (inserted, or replaced by a newer version or revision). */
  readonly materialized = new Counter({
    name: 'lienthong_materialized_records_total',
    help: 'Rows a sink wrote to PostgreSQL (inserted or replaced by a newer version)',
    labelNames: ['stage', 'dataset', 'agreement'] as const,
    registers: [this.registry],
  });

  /** Records refused at any stage, by error code: each one is on a dead-letter topic or was answered as refused. */
  readonly rejected = new Counter({
    name: 'lienthong_rejected_records_total',
    help: 'Records refused (dead-lettered, or refused to the publishing caller), by error code',
    labelNames: ['stage', 'dataset', 'agreement', 'code'] as const,
    registers: [this.registry],
  });

  /** Dead letters this process wrote, per dead-letter topic. */
  readonly deadLetters = new Counter({
    name: 'lienthong_dead_letters_total',
    help: 'Records this process wrote to a dead-letter topic',
    labelNames: ['topic'] as const,
    registers: [this.registry],
  });

  /** Where the depths of the dead-letter topics this process watches are read from ({@link watchDeadLetterDepth}). */
  private depthReader: (() => Promise<Map<string, number>>) | null = null;

  /** Records on each dead-letter topic the process watches (high watermark − log start), read at scrape. */
  readonly deadLetterDepth = new Gauge({
    name: 'lienthong_dlq_depth_records',
    help: 'Records held by a dead-letter topic (high watermark minus log start offset), read at scrape',
    labelNames: ['topic'] as const,
    registers: [this.registry],
    collect: async () => {
      if (!this.depthReader) return;
      // a broker that does not answer leaves the last values (and /ready says why)
      const depths = await this.depthReader().catch(() => null);
      for (const [topic, depth] of depths ?? []) this.deadLetterDepth.set({ topic }, depth);
    },
  });

  /** Makes `lienthong_dlq_depth_records` read the depths `read` returns, by topic, at every scrape. */
  watchDeadLetterDepth(read: () => Promise<Map<string, number>>): void {
    this.depthReader = read;
  }

  readonly latency = new Histogram({
    name: 'lienthong_end_to_end_latency_seconds',
    help: "Seconds from a change's occurredAt to the commit of its row in a sink",
    labelNames: ['stage', 'dataset', 'agreement'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.registry],
  });

  /** Records behind the end of each partition after a batch (high watermark − committed offset). */
  readonly lag = new Gauge({
    name: 'lienthong_consumer_lag_records',
    help: 'Records between the offset a consumer group committed and the end of the partition',
    labelNames: ['stage', 'group', 'topic', 'partition'] as const,
    registers: [this.registry],
  });

  readonly batchSize = new Histogram({
    name: 'lienthong_batch_records',
    help: 'Records in one consumed batch',
    labelNames: ['stage'] as const,
    buckets: BATCH_BUCKETS,
    registers: [this.registry],
  });

  /** Redis dedup lookups by result: `hit` (already applied, skipped) or `miss`. */
  readonly dedupLookups = new Counter({
    name: 'lienthong_dedup_lookups_total',
    help: 'Event ids looked up in Redis dedup, by result (hit: already applied, skipped)',
    labelNames: ['stage', 'result'] as const,
    registers: [this.registry],
  });

  private readonly dedupCounts = new Map<string, { hit: number; miss: number }>();

  readonly dedupHitRatio = new Gauge({
    name: 'lienthong_dedup_hit_ratio',
    help: 'Share of dedup lookups that were hits since the process started (0 before any lookup)',
    labelNames: ['stage'] as const,
    registers: [this.registry],
    collect: () => {
      for (const [stage, { hit, miss }] of this.dedupCounts)
        this.dedupHitRatio.set({ stage }, hit + miss === 0 ? 0 : hit / (hit + miss));
    },
  });

  /** HTTP requests a server of the process answered (the registry's API, HTTP ingest), by route and status. */
  readonly httpRequests = new Counter({
    name: 'lienthong_http_requests_total',
    help: 'HTTP requests answered, by server, route pattern and status code',
    labelNames: ['server', 'route', 'status'] as const,
    registers: [this.registry],
  });

  readonly degradedAgreements = new Gauge({
    name: 'lienthong_degraded_agreements',
    help: 'Agreements whose share stream cannot be prepared now (retried with backoff)',
    registers: [this.registry],
  });

  /** Counts one batch's dedup lookups: `hits` of `looked` ids were already applied. */
  countDedup(stage: Stage, looked: number, hits: number): void {
    const counts = this.dedupCounts.get(stage) ?? { hit: 0, miss: 0 };
    counts.hit += hits;
    counts.miss += looked - hits;
    this.dedupCounts.set(stage, counts);
    this.dedupLookups.inc({ stage, result: 'hit' }, hits);
    this.dedupLookups.inc({ stage, result: 'miss' }, looked - hits);
  }

  /** Observes the end-to-end latency of rows committed now. */
  observeLatency(stage: Stage, labels: StreamLabels, occurredAt: readonly Date[]): void {
    const now = Date.now();
    for (const at of occurredAt)
      this.latency.observe({ stage, ...labels }, Math.max(0, now - at.getTime()) / 1000);
  }

  /** The text Prometheus scrapes, and its content type. */
  async scrape(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}
