import type { Kafka } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { PipelineMetrics } from '../../infra/observability/metrics.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import type { Deduplicator } from './dedup.ts';

export interface SinkOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  /** The target database, its search_path set to the sink's schema. */
  pool: Pool;
  /**
   * The dataset as the topic delivers it: for a share topic, the agreement's projection
   * (`projectDataset`). Its fields define the table; `evolution.ts` says what happens when they differ
   * from an existing table's columns.
   */
  dataset: Dataset;
  /** `lt.share.<agreement>` (or, for a platform-side copy, `lt.src.<dataset>`). */
  topic: string;
  /** `lt.sink.<agency>`; a rebuild or a test uses its own. */
  groupId: string;
  /**
   * Redis dedup of applied event ids. The sink scopes it to the table instance it writes (see
   * docs/sink.md), so a rebuild into a new or emptied table never skips an event.
   */
  dedup: Deduplicator;
  log: Logger;
  /** The process's metrics (infra/observability); default: the sink's own, served nowhere. */
  metrics?: PipelineMetrics;
  /** DLQ stage name for records this sink rejects. Default `sink`. */
  stage?: string;
  /**
   * The agency this copy belongs to: the records its sink rejects go to that agency's own
   * `lt.dlq.<stage>.<agency>`. Unset (a platform-side copy, a test): `lt.dlq.<stage>`.
   */
  owner?: string;
  /**
   * A batch whose database work (upserts, purges) takes longer than this, in milliseconds, pauses its
   * partition for a while so PostgreSQL can catch up. Default 2000.
   */
  slowBatchMs?: number;
  /**
   * The first pause after a slow batch, in milliseconds; it doubles with each slow batch in a row, up to
   * {@link maxPauseMs}, and starts over after a batch that was not slow. Default 500.
   */
  pauseMs?: number;
  /** The longest pause, in milliseconds. Default 30,000. */
  maxPauseMs?: number;
  /**
   * Most bytes fetched per partition per request (kafkajs `maxBytesPerPartition`): bounds a batch, hence
   * the sink's memory. A single record larger than this still arrives alone. Default 1 MiB.
   */
  maxBytesPerPartition?: number;
  /** Most bytes fetched per request across partitions (kafkajs `maxBytes`). Default 8 MiB. */
  maxBytes?: number;
  /**
   * How long a fetch waits on the broker for new records, in milliseconds (kafkajs `maxWaitTimeInMs`); it
   * also bounds how long {@link Sink.stop} waits for the fetch in flight. Default 5000.
   */
  maxWaitTimeMs?: number;
  /**
   * How long the group waits for a silent member before giving its partitions to another, in
   * milliseconds (kafkajs `sessionTimeout`): the time a crashed sink's partitions stay unread. Between the
   * broker's `group.min.session.timeout.ms` (6 s) and `group.max.session.timeout.ms`. Default 30,000.
   */
  sessionTimeoutMs?: number;
  /**
   * Partitions processed at once. Default 3: one batch is decoded while another waits for PostgreSQL.
   * Keys never span partitions and rows are written in key order, so concurrent batches cannot deadlock.
   */
  partitionsConsumedConcurrently?: number;
}

export const SINK_DEFAULTS = {
  stage: 'sink',
  slowBatchMs: 2_000,
  pauseMs: 500,
  maxPauseMs: 30_000,
  maxBytesPerPartition: 1_048_576,
  maxBytes: 8_388_608,
  maxWaitTimeMs: 5_000,
  sessionTimeoutMs: 30_000,
  partitionsConsumedConcurrently: 3,
} as const;

/** The tuning options with their defaults applied. */
export interface SinkSettings {
  stage: string;
  slowBatchMs: number;
  pauseMs: number;
  maxPauseMs: number;
  maxBytesPerPartition: number;
  maxBytes: number;
  maxWaitTimeMs: number;
  sessionTimeoutMs: number;
  partitionsConsumedConcurrently: number;
}

/** Applies the defaults and refuses values that cannot work, naming the option and the rule. */
export function sinkSettings(options: SinkOptions): SinkSettings {
  const settings: SinkSettings = {
    stage: options.stage ?? SINK_DEFAULTS.stage,
    slowBatchMs: options.slowBatchMs ?? SINK_DEFAULTS.slowBatchMs,
    pauseMs: options.pauseMs ?? SINK_DEFAULTS.pauseMs,
    maxPauseMs: options.maxPauseMs ?? SINK_DEFAULTS.maxPauseMs,
    maxBytesPerPartition: options.maxBytesPerPartition ?? SINK_DEFAULTS.maxBytesPerPartition,
    maxBytes: options.maxBytes ?? SINK_DEFAULTS.maxBytes,
    maxWaitTimeMs: options.maxWaitTimeMs ?? SINK_DEFAULTS.maxWaitTimeMs,
    sessionTimeoutMs: options.sessionTimeoutMs ?? SINK_DEFAULTS.sessionTimeoutMs,
    partitionsConsumedConcurrently:
      options.partitionsConsumedConcurrently ?? SINK_DEFAULTS.partitionsConsumedConcurrently,
  };
  const problems: string[] = [];
  const whole = (name: Exclude<keyof SinkSettings, 'stage'>, min: number): void => {
    const value = settings[name];
    if (!Number.isInteger(value) || value < min)
      problems.push(`${name} must be a whole number ≥ ${min} (got ${String(value)})`);
  };
  whole('slowBatchMs', 0);
  whole('pauseMs', 1);
  whole('maxPauseMs', 1);
  whole('maxBytesPerPartition', 1_024);
  whole('maxBytes', 1_024);
  whole('maxWaitTimeMs', 0);
  whole('sessionTimeoutMs', 1_000);
  whole('partitionsConsumedConcurrently', 1);
  if (settings.maxBytes < settings.maxBytesPerPartition)
    problems.push('maxBytes must be at least maxBytesPerPartition');
  if (settings.maxPauseMs < settings.pauseMs) problems.push('maxPauseMs must be at least pauseMs');
  if (problems.length > 0) {
    throw new LtError('LT_CONFIG_INVALID', `sink options are invalid: ${problems.join('; ')}`, {
      details: { problems },
    });
  }
  return settings;
}
