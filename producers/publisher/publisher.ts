import { createHash } from 'node:crypto';
import type avro from 'avsc';
import type { IHeaders, Message } from 'kafkajs';
import { v7 as uuidv7 } from 'uuid';
import { LtError, type ErrorCode } from '../../infra/errors.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { IdempotentSender } from '../../infra/kafka/produce.ts';
import { PipelineMetrics } from '../../infra/observability/metrics.ts';
import { newTraceId, TRACEPARENT, traceparentFor } from '../../infra/observability/trace.ts';
import {
  changeEventMessages,
  type ChangeEvent,
  type DatasetRecord,
} from '../../schemas/envelope/change-event.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset } from '../../schemas/model/dictionary.ts';
import {
  createKeyValidator,
  createRecordValidator,
  type RecordValidation,
} from '../../schemas/model/validator.ts';
import { lookupDatasetSchemas } from '../../schemas/registry/client.ts';
import { encodeWire } from '../../schemas/registry/wire.ts';

import { parseChange, type Change } from './change.ts';
import { Compressions, PUBLISHER_DEFAULTS, type PublisherOptions } from './options.ts';
import type { PublishedEvent } from './version-ledger.ts';

/** What happened to one record of a batch, by its position in the batch. */
export type RecordOutcome =
  | {
      index: number;
      status: 'accepted';
      key: string;
      version: number;
      eventId: string;
      /** A retry of an event already published under the caller's eventId, with the same content: not sent again. */
      alreadyPublished?: true;
    }
  | {
      index: number;
      status: 'rejected';
      key: string | null;
      code: ErrorCode;
      message: string;
      /** For LT_VERSION_STALE against the ledger: the last version published for the key. */
      lastPublished?: number;
    };

export interface BatchResult {
  topic: string;
  accepted: number;
  rejected: number;
  outcomes: RecordOutcome[];
  /** The events published (empty when the batch was refused). */
  events: ChangeEvent[];
}

export interface BatchOptions {
  /** Publish the valid records even when others are refused. Default: all-or-nothing. */
  partial?: boolean;
}

/** Everything the publish path needs per dataset, resolved once. */
interface DatasetChannel {
  dataset: Dataset;
  topic: string;
  keySchemaId: number;
  keyType: avro.Type;
  valueSchemaId: number;
  valueType: avro.Type;
  validate: (input: unknown) => RecordValidation;
  validateKey: (key: string) => string[];
}

/** A change that passed every check, ready to produce. */
interface Prepared {
  index: number;
  event: ChangeEvent;
  messages: Message[];
  /** When the caller gave the eventId: what the event says, to tell a retry from a reuse. */
  given: PublishedEvent | null;
}

/**
 * A digest of what a change says — dataset, op, key, version and record, keys sorted — but not when or how it
 * was sent (occurredAt, traceId): a retry that lets those default is still the same change.
 */
function contentDigest(event: ChangeEvent): Buffer {
  const canonical = (value: unknown): unknown => {
    if (typeof value === 'bigint') return value.toString();
    if (value instanceof Date) return value.toISOString();
    if (Buffer.isBuffer(value)) return value.toString('base64');
    if (Array.isArray(value)) return value.map(canonical);
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(
        Object.keys(value)
          .sort()
          .map((name) => [name, canonical((value as Record<string, unknown>)[name])]),
      );
    return value;
  };
  return createHash('sha256')
    .update(JSON.stringify(canonical([event.dataset, event.op, event.key, event.version, event.after])))
    .digest();
}

function sameEvent(a: PublishedEvent, b: PublishedEvent): boolean {
  return a.dataset === b.dataset && a.key === b.key && a.version === b.version && a.digest.equals(b.digest);
}

function refusal(index: number, key: string | null, error: unknown): RecordOutcome {
  if (error instanceof LtError)
    return { index, status: 'rejected', key, code: error.code, message: error.message };
  return { index, status: 'rejected', key, code: 'LT_RECORD_INVALID', message: (error as Error).message };
}

/**
 * The Agent Node's source-side publish path, shared by the SDK, HTTP ingest, the outbox relay and the
 * snapshot: shape check → dictionary validation (zod, then Avro) → owner check → version above the last
 * published for the key → envelope (UUIDv7 eventId, traceId) → Confluent wire format → idempotent producer,
 * acks=all, order kept per partition, batched and compressed. A DELETE is followed by a tombstone.
 */
export class Publisher {
  /** Idempotent, one send at a time, replaced when the broker refuses its sequence numbers (produce.ts). */
  private readonly sender: IdempotentSender;
  private readonly channels = new Map<string, Promise<DatasetChannel>>();
  /** One batch at a time per dataset, so the version check and the ledger update cannot interleave. */
  private readonly queues = new Map<string, Promise<unknown>>();
  private readonly log: Logger;
  readonly metrics: PipelineMetrics;
  private readonly settings: Required<
    Pick<PublisherOptions, 'maxRecordBytes' | 'sendTimeoutMs' | 'compression'>
  >;

  private readonly options: PublisherOptions;

  constructor(options: PublisherOptions) {
    this.options = options;
    this.log = options.log.child({ component: 'publisher', agency: options.agency });
    this.metrics = options.metrics ?? new PipelineMetrics();
    this.settings = { ...PUBLISHER_DEFAULTS, ...definedOnly(options) };
    this.sender = new IdempotentSender(options.kafka, this.log);
  }

  async connect(): Promise<void> {
    await this.sender.connect();
  }

  async close(): Promise<void> {
    await this.sender.disconnect();
  }

  /** The dataset, refused unless this agency owns it (single source of truth). */
  datasetFor(datasetId: string): Dataset {
    const dataset = getDataset(this.options.dictionary, datasetId);
    if (dataset.owner !== this.options.agency) {
      throw new LtError(
        'LT_NOT_OWNER',
        `agency ${this.options.agency} does not own ${dataset.id} (its owner is ${dataset.owner})`,
        {
          details: { dataset: dataset.id, owner: dataset.owner, agency: this.options.agency },
          hint: 'only the owner agency’s Agent Node may publish a dataset: it is the single source of truth',
        },
      );
    }
    return dataset;
  }

  private channel(dataset: Dataset): Promise<DatasetChannel> {
    let channel = this.channels.get(dataset.id);
    if (!channel) {
      channel = (async () => {
        const registered = await lookupDatasetSchemas(this.options.registry, dataset);
        const [keyType, valueType] = await Promise.all([
          this.options.registry.getSchema(registered.keySchemaId),
          this.options.registry.getSchema(registered.valueSchemaId),
        ]);
        return {
          dataset,
          topic: registered.topic,
          keySchemaId: registered.keySchemaId,
          keyType: keyType as unknown as avro.Type,
          valueSchemaId: registered.valueSchemaId,
          valueType: valueType as unknown as avro.Type,
          validate: createRecordValidator(dataset, this.options.dictionary),
          validateKey: createKeyValidator(dataset, this.options.dictionary),
        };
      })();
      channel.catch(() => this.channels.delete(dataset.id));
      this.channels.set(dataset.id, channel);
    }
    return channel;
  }

  /** Checks one change and encodes it; throws an LtError naming what is wrong. */
  private prepare(channel: DatasetChannel, input: unknown, index: number): Prepared {
    const shape = parseChange(input);
    if (!shape.ok) throw new LtError('LT_RECORD_INVALID', shape.message);
    const change = shape.change;
    const { dataset } = channel;
    let key: string;
    let after: DatasetRecord | null = null;
    if (change.op === 'DELETE') {
      const problems = channel.validateKey(change.key);
      if (problems.length > 0)
        throw new LtError('LT_RECORD_INVALID', problems.join('; '), { details: { problems } });
      key = change.key;
    } else {
      const result = channel.validate(change.after);
      if (!result.ok) {
        // the response names the key already; the problems name the fields
        const message = result.problems.map((problem) => `${problem.path}: ${problem.message}`).join('; ');
        throw new LtError('LT_RECORD_INVALID', message, { details: { problems: result.problems } });
      }
      after = result.record;
      key = String(after[dataset.key.field]);
    }
    const common = {
      eventId: change.eventId ?? uuidv7(),
      dataset: dataset.id,
      key,
      version: change.version,
      occurredAt: change.occurredAt ?? new Date(),
      sourceAgency: this.options.agency,
      traceId: change.traceId ?? newTraceId(),
    };
    const event: ChangeEvent =
      after === null
        ? { ...common, op: 'DELETE', after: null }
        : { ...common, op: change.op as 'CREATE', after };
    const keyBytes = encodeWire(channel.keySchemaId, channel.keyType, { [dataset.key.field]: key });
    let value: Buffer;
    try {
      value = encodeWire(channel.valueSchemaId, channel.valueType, event);
    } catch (cause) {
      throw new LtError(
        'LT_RECORD_INVALID',
        `${key}: the record does not fit the ${dataset.id} Avro schema: ${(cause as Error).message}`,
        { cause },
      );
    }
    if (value.length > this.settings.maxRecordBytes) {
      throw new LtError(
        'LT_RECORD_TOO_LARGE',
        `${key}: encoded record is ${value.length} bytes; the limit is ${this.settings.maxRecordBytes}`,
        {
          details: { bytes: value.length, limit: this.settings.maxRecordBytes },
        },
      );
    }
    const headers = this.headersFor(event);
    const messages = changeEventMessages(keyBytes, value, headers, event.op);
    const given =
      change.eventId === undefined
        ? null
        : {
            eventId: event.eventId,
            dataset: dataset.id,
            key,
            version: event.version,
            digest: contentDigest(event),
          };
    return { index, event, messages, given };
  }

  /**
   * Kafka headers of a published event. SECURITY: the security issue signs here — `lt-signature`
   * (Ed25519 over the canonical digest of dataset, key, version, eventId and the record) and `lt-key-id`.
   */
  private headersFor(event: ChangeEvent): IHeaders {
    return { 'lt-trace-id': event.traceId, [TRACEPARENT]: traceparentFor(event.traceId) };
  }

  /**
   * Publishes a batch of changes to one dataset in the given order. Each record is accepted or refused with
   * a code and a message; by default the batch is all-or-nothing (nothing is published if one is refused).
   * Throws for the whole request: unknown dataset, not the owner, broker not acknowledging in time.
   */
  async publishBatch(
    datasetId: string,
    changes: readonly unknown[],
    { partial = false }: BatchOptions = {},
  ): Promise<BatchResult> {
    const dataset = this.datasetFor(datasetId);
    // The bounded wait counts from the call, queueing included: during an outage the k-th queued batch
    // fails after sendTimeoutMs like the first, not after k of them.
    const deadline = Date.now() + this.settings.sendTimeoutMs;
    const previous = this.queues.get(dataset.id) ?? Promise.resolve();
    const run = (async () => {
      // Validation and encoding (CPU) run while the previous batch waits for its acknowledgement;
      // the version check, the send and the ledger update run one batch at a time, in call order.
      const channel = await this.channel(dataset);
      const checked = this.prepareAll(channel, changes);
      await previous.catch(() => undefined);
      return this.publishPrepared(channel, changes.length, checked, partial, deadline);
    })();
    this.queues.set(dataset.id, run);
    return run;
  }

  /** Checks and encodes every change of a batch; refusals are recorded by position. */
  private prepareAll(
    channel: DatasetChannel,
    changes: readonly unknown[],
  ): { outcomes: RecordOutcome[]; prepared: Prepared[]; newest: Map<string, number> } {
    const { dataset } = channel;
    const outcomes: RecordOutcome[] = [];
    const prepared: Prepared[] = [];
    const newest = new Map<string, number>();
    changes.forEach((input, index) => {
      try {
        const item = this.prepare(channel, input, index);
        const earlier = newest.get(item.event.key);
        if (earlier !== undefined && item.event.version <= earlier) {
          throw new LtError(
            'LT_VERSION_STALE',
            `${item.event.key}: version ${item.event.version} is not higher than version ${earlier} earlier in this batch`,
          );
        }
        newest.set(item.event.key, item.event.version);
        prepared.push(item);
      } catch (error) {
        const key = (input as { key?: unknown; after?: Record<string, unknown> } | null) ?? null;
        const named = key?.key ?? key?.after?.[dataset.key.field];
        outcomes[index] = refusal(index, typeof named === 'string' ? named : null, error);
      }
    });
    return { outcomes, prepared, newest };
  }

  private async publishPrepared(
    channel: DatasetChannel,
    count: number,
    {
      outcomes,
      prepared,
      newest,
    }: { outcomes: RecordOutcome[]; prepared: Prepared[]; newest: Map<string, number> },
    partial: boolean,
    deadline: number,
  ): Promise<BatchResult> {
    const { dataset, topic } = channel;
    let retries = 0;
    const toSend = await this.options.ledger.transaction(dataset.id, async (ledger) => {
      // an eventId the caller gave: the same content again is a retry (accepted, not sent twice); other
      // content under it is refused, since every sink would drop it as a duplicate
      const known = await ledger.publishedEvents([
        ...new Set(prepared.flatMap((item) => (item.given ? [item.given.eventId] : []))),
      ]);
      const firstTime = prepared.filter((item) => {
        if (!item.given) return true;
        const earlier = known.get(item.given.eventId);
        if (!earlier) {
          known.set(item.given.eventId, item.given);
          return true;
        }
        if (sameEvent(earlier, item.given)) {
          outcomes[item.index] = {
            index: item.index,
            status: 'accepted',
            key: item.event.key,
            version: item.event.version,
            eventId: item.event.eventId,
            alreadyPublished: true,
          };
          retries++;
          return false;
        }
        const reused = new LtError(
          'LT_EVENT_ID_REUSED',
          `${item.event.key}: eventId ${item.given.eventId} was already published for ${earlier.dataset} key ` +
            `${earlier.key} version ${earlier.version} with other content; a new change needs a new eventId ` +
            '(or none: the Agent Node makes one)',
        );
        outcomes[item.index] = refusal(item.index, item.event.key, reused);
        return false;
      });
      const published = await ledger.lastVersions([...newest.keys()]);
      const fresh = firstTime.filter((item) => {
        const last = published.get(item.event.key);
        if (last === undefined || item.event.version > last) return true;
        const stale = new LtError(
          'LT_VERSION_STALE',
          `${item.event.key}: version ${item.event.version} is not higher than the last published version ${last}`,
        );
        outcomes[item.index] = {
          ...refusal(item.index, item.event.key, stale),
          lastPublished: last,
        } as RecordOutcome;
        return false;
      });
      const sending = fresh.length + retries < count && !partial ? [] : fresh;
      if (sending.length < fresh.length) {
        for (const item of fresh) {
          const message = `${item.event.key}: not published because another record of this all-or-nothing batch was refused`;
          outcomes[item.index] = refusal(
            item.index,
            item.event.key,
            new LtError('LT_BATCH_REJECTED', message),
          );
        }
      }
      if (sending.length > 0) {
        await this.send(
          topic,
          sending.flatMap((item) => item.messages),
          deadline,
        );
        const advanced = new Map<string, number>();
        for (const { event } of sending)
          advanced.set(event.key, Math.max(advanced.get(event.key) ?? 0, event.version));
        await ledger.advance(
          advanced,
          sending.flatMap((item) => (item.given ? [item.given] : [])),
        );
      }
      return sending;
    });
    for (const { index, event } of toSend) {
      outcomes[index] = {
        index,
        status: 'accepted',
        key: event.key,
        version: event.version,
        eventId: event.eventId,
      };
    }
    const accepted = toSend.length + retries;
    this.log.debug({ topic, accepted, rejected: count - accepted }, 'batch published');
    this.metrics.produced.inc({ dataset: channel.dataset.id }, toSend.length);
    for (const outcome of outcomes)
      if (outcome.status === 'rejected')
        this.metrics.rejected.inc({
          stage: 'publish',
          dataset: channel.dataset.id,
          agreement: '',
          code: outcome.code,
        });
    return {
      topic,
      accepted,
      rejected: count - accepted,
      outcomes,
      events: toSend.map((item) => item.event),
    };
  }

  private async send(topic: string, messages: Message[], deadline: number): Promise<void> {
    const waitMs = Math.max(0, deadline - Date.now());
    const unacknowledged = (reason: string, cause?: unknown): LtError =>
      new LtError(
        'LT_PUBLISH_FAILED',
        `${messages.length} messages for ${topic} were not acknowledged: ${reason}`,
        {
          ...(cause === undefined ? {} : { cause }),
          details: { topic },
          hint:
            'the broker may be down or unreachable; retry later. Some of these messages may still arrive: ' +
            'retrying is safe (sinks keep the highest version; pass eventId to make retries recognisable)',
        },
      );
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(unacknowledged(`no acknowledgement within ${this.settings.sendTimeoutMs} ms`)),
        waitMs,
      );
    });
    // the sender makes one send at a time: one given up on here still finishes before the next starts
    const sending = this.sender.send({
      topicMessages: [{ topic, messages }],
      compression: Compressions[this.settings.compression],
    });
    sending.catch(() => undefined); // when the timeout wins, its failure is reported by nobody
    try {
      await Promise.race([sending, timeout]);
    } catch (cause) {
      if (cause instanceof LtError) throw cause;
      throw unacknowledged((cause as Error).message, cause);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Publishes one change; throws the refusal as an LtError. */
  async publish(datasetId: string, change: Change): Promise<RecordOutcome & { status: 'accepted' }> {
    const result = await this.publishBatch(datasetId, [change]);
    const outcome = result.outcomes[0]!;
    if (outcome.status === 'rejected')
      throw new LtError(outcome.code, outcome.message, { details: { dataset: datasetId, key: outcome.key } });
    return outcome;
  }
}

function definedOnly(
  options: PublisherOptions,
): Partial<Pick<PublisherOptions, 'maxRecordBytes' | 'sendTimeoutMs' | 'compression'>> {
  const picked: Partial<Pick<PublisherOptions, 'maxRecordBytes' | 'sendTimeoutMs' | 'compression'>> = {};
  if (options.maxRecordBytes !== undefined) picked.maxRecordBytes = options.maxRecordBytes;
  if (options.sendTimeoutMs !== undefined) picked.sendTimeoutMs = options.sendTimeoutMs;
  if (options.compression !== undefined) picked.compression = options.compression;
  return picked;
}
