import { CompressionTypes, type Kafka } from 'kafkajs';
import type { Logger } from '../../infra/logging/logger.ts';
import type { PipelineMetrics } from '../../infra/observability/metrics.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import type { VersionLedger } from './version-ledger.ts';

export const Compressions = { none: CompressionTypes.None, gzip: CompressionTypes.GZIP } as const;

export interface PublisherOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  dictionary: Dictionary;
  /** The agency this Agent Node speaks for; it may publish only the datasets it owns. */
  agency: string;
  /** Where the last published version per key is kept (the agency's PostgreSQL). */
  ledger: VersionLedger;
  log: Logger;
  /** The process's metrics (infra/observability); default: the publisher's own, served nowhere. */
  metrics?: PipelineMetrics;
  /**
   * Largest encoded record accepted, in bytes. Default 1,000,000: under the broker's
   * `message.max.bytes` (2 MiB locally) with room for the batch overhead.
   */
  maxRecordBytes?: number;
  /** How long a publish waits for the broker before failing with a retriable error. Default 10 s. */
  sendTimeoutMs?: number;
  /** Compression of produced batches. Default gzip (the only codec built into kafkajs). */
  compression?: keyof typeof Compressions;
}

export const PUBLISHER_DEFAULTS = {
  maxRecordBytes: 1_000_000,
  sendTimeoutMs: 10_000,
  compression: 'gzip',
} as const;
