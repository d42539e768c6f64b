import type { Consumer, EachBatchPayload, Kafka, Producer } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { Pool } from '../../infra/postgres/pool.ts';
import type { ChangeEvent } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import { sendToDeadLetter, type Rejection, type RejectedRecord } from '../dlq/dead-letter.ts';
import type { Deduplicator } from './dedup.ts';
import { SinkTable } from './table.ts';

export interface SinkOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  /** The target database, its search_path set to the sink's schema. */
  pool: Pool;
  dataset: Dataset;
  topic: string;
  groupId: string;
  dedup: Deduplicator;
  log: Logger;
  /** DLQ stage name for records this sink rejects. */
  stage?: string;
}

export interface SinkStats {
  /** Events decoded and offered to the upsert. */
  received: number;
  /** Rows written (inserted or replaced by a newer version). */
  applied: number;
  /** Events dropped by Redis dedup or by batch collapsing before reaching PostgreSQL. */
  skipped: number;
  /** Rows the version guard kept because the stored version was already newer or equal. */
  stale: number;
  /** Records sent to the DLQ. */
  rejected: number;
}

/**
 * Materializes one change-event topic into a typed PostgreSQL table: decode → dedup (Redis) → collapse each
 * batch to the newest version per key → versioned upsert → commit offsets only after the database commit.
 */
export class Sink {
  readonly table: SinkTable;
  readonly stats: SinkStats = { received: 0, applied: 0, skipped: 0, stale: 0, rejected: 0 };
  private readonly consumer: Consumer;
  private readonly dlq: Producer;
  private readonly log: Logger;
  private readonly stage: string;

  constructor(private readonly options: SinkOptions) {
    this.table = new SinkTable(options.dataset);
    this.stage = options.stage ?? 'sink';
    this.log = options.log.child({ component: 'sink', topic: options.topic, group: options.groupId });
    this.consumer = options.kafka.consumer({ groupId: options.groupId, allowAutoTopicCreation: false });
    this.dlq = options.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  }

  async start(): Promise<void> {
    await this.options.pool.query(this.table.createSql());
    await this.dlq.connect();
    await this.consumer.connect();
    await this.consumer.subscribe({ topic: this.options.topic, fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: (payload) => this.handleBatch(payload),
    });
    this.log.info({ table: this.table.name }, 'sink started');
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
    await this.dlq.disconnect();
  }

  private async decode(message: { value: Buffer | null }): Promise<ChangeEvent> {
    try {
      const event = (await this.options.registry.decode(message.value as Buffer)) as ChangeEvent;
      if (event.dataset !== this.options.dataset.id) {
        throw new LtError(
          'LT_RECORD_INVALID',
          `event for dataset "${event.dataset}" on the topic of ${this.options.dataset.id}`,
        );
      }
      return event;
    } catch (cause) {
      if (cause instanceof LtError) throw cause;
      const status = (cause as { status?: number }).status;
      if (status === 404)
        throw new LtError('LT_SCHEMA_UNKNOWN', `unknown schema id: ${(cause as Error).message}`, { cause });
      if (
        status === undefined &&
        !/magic byte|invalid|truncated/i.test((cause as Error).name + (cause as Error).message)
      ) {
        throw new LtError(
          'LT_REGISTRY_UNREACHABLE',
          `decoding needs the registry: ${(cause as Error).message}`,
          { cause },
        );
      }
      throw new LtError('LT_DECODE_FAILED', `cannot decode: ${(cause as Error).message}`, { cause });
    }
  }

  private async handleBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    const events: ChangeEvent[] = [];
    const rejected: { record: RejectedRecord; rejection: Rejection }[] = [];
    for (const message of batch.messages) {
      if (message.value === null) continue; // tombstone: the DELETE before it carried the version
      try {
        events.push(await this.decode(message));
      } catch (error) {
        if (error instanceof LtError && error.retriable) throw error; // kafkajs retries the batch
        const code = error instanceof LtError ? error.code : 'LT_DECODE_FAILED';
        rejected.push({
          record: { key: message.key, value: message.value, headers: message.headers },
          rejection: {
            stage: this.stage,
            code,
            detail: (error as Error).message,
            source: { topic: batch.topic, partition: batch.partition, offset: message.offset },
          },
        });
      }
    }

    const seen = await this.options.dedup.seen(events.map((event) => event.eventId));
    const latest = new Map<string, ChangeEvent>();
    for (const event of events) {
      if (seen.has(event.eventId)) continue;
      const current = latest.get(event.key);
      if (!current || event.version > current.version) latest.set(event.key, event);
    }

    if (rejected.length > 0) {
      await sendToDeadLetter(this.dlq, rejected);
      this.log.warn(
        { count: rejected.length, first: rejected[0]?.rejection },
        'records sent to the dead-letter topic',
      );
    }
    let applied = 0;
    if (latest.size > 0) {
      const rows = [...latest.values()].map((event) => this.table.row(event));
      const result = await this.options.pool.query(this.table.upsertSql(), this.table.upsertParams(rows));
      applied = result.rowCount ?? 0;
    }
    const next = (BigInt(batch.lastOffset()) + 1n).toString();
    await this.consumer.commitOffsets([{ topic: batch.topic, partition: batch.partition, offset: next }]);
    resolveOffset(batch.lastOffset());
    await this.options.dedup.remember([...latest.values()].map((event) => event.eventId));
    await heartbeat();

    this.stats.received += events.length;
    this.stats.applied += applied;
    this.stats.skipped += events.length - latest.size;
    this.stats.stale += latest.size - applied;
    this.stats.rejected += rejected.length;
  }
}
