import { randomUUID } from 'node:crypto';
import type { Kafka, Message, Producer } from 'kafkajs';
import { v7 as uuidv7 } from 'uuid';
import { LtError } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import type { ChangeEvent, DatasetRecord, Op } from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, type Dictionary } from '../../schemas/model/dictionary.ts';
import { createRecordValidator, type RecordValidation } from '../../schemas/model/validator.ts';
import {
  registerDatasetSchemas,
  type RegisteredDataset,
  type SchemaRegistry,
} from '../../schemas/registry/client.ts';

/** One change as an agency states it; the publisher adds the envelope (eventId, traceId, …). */
export type Change =
  | { op: 'DELETE'; key: string; version: number; occurredAt?: Date; traceId?: string }
  | { op: Exclude<Op, 'DELETE'>; after: DatasetRecord; version: number; occurredAt?: Date; traceId?: string };

export interface PublisherOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  dictionary: Dictionary;
  /** The agency this Agent Node speaks for; it may publish only the datasets it owns. */
  agency: string;
  log: Logger;
}

export interface PublishResult {
  topic: string;
  events: ChangeEvent[];
}

/**
 * The Agent Node's source-side publish path: owner check → envelope → Confluent wire format → idempotent
 * producer (acks=all). A DELETE is followed by a tombstone for its key.
 */
export class Publisher {
  private readonly producer: Producer;
  private readonly registered = new Map<string, Promise<RegisteredDataset>>();
  private readonly validators = new Map<string, (input: unknown) => RecordValidation>();
  private readonly log: Logger;

  constructor(private readonly options: PublisherOptions) {
    this.log = options.log.child({ component: 'publisher', agency: options.agency });
    // Idempotence keeps per-partition order under retries; one request in flight per broker connection
    // is kafkajs's only order-safe setting with retries.
    this.producer = options.kafka.producer({
      idempotent: true,
      maxInFlightRequests: 1,
      allowAutoTopicCreation: false,
    });
  }

  async connect(): Promise<void> {
    await this.producer.connect();
  }

  async close(): Promise<void> {
    await this.producer.disconnect();
  }

  private schemasFor(dataset: Dataset): Promise<RegisteredDataset> {
    let registered = this.registered.get(dataset.id);
    if (!registered) {
      registered = registerDatasetSchemas(this.options.registry, dataset);
      registered.catch(() => this.registered.delete(dataset.id));
      this.registered.set(dataset.id, registered);
    }
    return registered;
  }

  private validate(dataset: Dataset, record: unknown): DatasetRecord {
    let validator = this.validators.get(dataset.id);
    if (!validator) {
      validator = createRecordValidator(dataset, this.options.dictionary);
      this.validators.set(dataset.id, validator);
    }
    const result = validator(record);
    if (result.ok) return result.record;
    const key = (record as Record<string, unknown> | null)?.[dataset.key.field];
    const where = `${dataset.id}${typeof key === 'string' ? ` ${key}` : ''}`;
    throw new LtError(
      'LT_RECORD_INVALID',
      `${where}: ${result.problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ')}`,
      {
        details: { dataset: dataset.id, key, problems: result.problems },
      },
    );
  }

  /** Validates the record against the dictionary and builds the change event around it. */
  envelope(dataset: Dataset, change: Change): ChangeEvent {
    const common = {
      eventId: uuidv7(),
      dataset: dataset.id,
      version: change.version,
      occurredAt: change.occurredAt ?? new Date(),
      sourceAgency: this.options.agency,
      traceId: change.traceId ?? randomUUID(),
    };
    if (change.op === 'DELETE') return { ...common, op: 'DELETE', key: change.key, after: null };
    const after = this.validate(dataset, change.after);
    const key = after[dataset.key.field];
    if (typeof key !== 'string' || key.length === 0) {
      throw new LtError(
        'LT_RECORD_INVALID',
        `${dataset.id}: key field "${dataset.key.field}" is missing or not a string`,
        {
          details: { dataset: dataset.id, field: dataset.key.field },
        },
      );
    }
    return { ...common, op: change.op, key, after };
  }

  /** Publishes the changes of one dataset in the given order; resolves once the broker acknowledged all. */
  async publish(datasetId: string, changes: Change[]): Promise<PublishResult> {
    const dataset = getDataset(this.options.dictionary, datasetId);
    if (dataset.owner !== this.options.agency) {
      throw new LtError(
        'LT_NOT_OWNER',
        `agency ${this.options.agency} does not own ${dataset.id} (its owner is ${dataset.owner})`,
        {
          details: { dataset: dataset.id, owner: dataset.owner, agency: this.options.agency },
          hint: 'only the owner agency’s Agent Node may publish a dataset: its single source of truth',
        },
      );
    }
    const { topic, keySchemaId, valueSchemaId } = await this.schemasFor(dataset);
    const events = changes.map((change) => this.envelope(dataset, change));
    const messages: Message[] = [];
    for (const event of events) {
      const key = await this.options.registry.encode(keySchemaId, { [dataset.key.field]: event.key });
      let value: Buffer;
      try {
        value = await this.options.registry.encode(valueSchemaId, event);
      } catch (cause) {
        throw new LtError(
          'LT_RECORD_INVALID',
          `${dataset.id} ${event.key}: the record does not match the dataset schema: ${(cause as Error).message}`,
          {
            cause,
            details: { dataset: dataset.id, key: event.key },
          },
        );
      }
      const headers = { 'lt-trace-id': event.traceId };
      messages.push({ key, value, headers });
      if (event.op === 'DELETE') messages.push({ key, value: null, headers });
    }
    try {
      await this.producer.send({ topic, acks: -1, messages });
    } catch (cause) {
      throw new LtError(
        'LT_PUBLISH_FAILED',
        `publishing ${events.length} ${dataset.id} events failed: ${(cause as Error).message}`,
        {
          cause,
          details: { topic, count: events.length },
          hint: 'the events were not acknowledged; publishing them again is safe (the sinks keep the highest version)',
        },
      );
    }
    this.log.debug({ topic, count: events.length }, 'published');
    return { topic, events };
  }
}
