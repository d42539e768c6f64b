import type { Kafka } from 'kafkajs';
import { LtError } from '../../infra/errors.ts';
import { consumerGroups, subjects, topics } from '../../infra/kafka/topics.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { createPool, quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import type { PipelineMetrics } from '../../infra/observability/metrics.ts';
import type { RedisClient } from '../../infra/redis/client.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, type Dictionary } from '../../schemas/model/dictionary.ts';
import { projectDataset } from '../../schemas/model/projection.ts';
import type { SchemaRegistry } from '../../schemas/registry/client.ts';
import { Deduplicator } from '../sink/dedup.ts';
import { Sink } from '../sink/sink.ts';

/** One agreement an agency receives, as its Agent Node config names it. */
export interface SubscriptionSpec {
  agreement: string;
  dataset: string;
}

/**
 * The fields an agreement delivers, read from its share topic's registered value schema: the subscriber
 * learns them from the platform, not from its own config, so a changed agreement needs no local edit.
 */
export async function agreedDataset(
  registry: SchemaRegistry,
  dictionary: Dictionary,
  spec: SubscriptionSpec,
): Promise<Dataset> {
  const dataset = getDataset(dictionary, spec.dataset);
  const subject = subjects.value(topics.share(spec.agreement));
  let schema: { fields?: { name: string; type: unknown }[] };
  try {
    const id = await registry.getLatestSchemaId(subject);
    schema = JSON.parse(JSON.stringify((await registry.getSchema(id)) as unknown as object)) as typeof schema;
  } catch (cause) {
    throw new LtError(
      'LT_SCHEMA_UNKNOWN',
      `agreement ${spec.agreement} has no registered share schema (${subject})`,
      {
        cause,
        hint: 'the coordinator registers it when the agreement is approved; check the agreement’s status',
      },
    );
  }
  const after = schema.fields?.find((field) => field.name === 'after');
  const record = Array.isArray(after?.type)
    ? (after.type as { fields?: { name: string }[] }[]).find((branch) => branch?.fields)
    : undefined;
  const fields = record?.fields?.map((field) => field.name) ?? [];
  return projectDataset(dataset, fields);
}

export interface SubscriptionOptions {
  kafka: Kafka;
  registry: SchemaRegistry;
  dictionary: Dictionary;
  /** The subscriber agency's own PostgreSQL. */
  databaseUrl: string;
  agency: string;
  redis: RedisClient | null;
  log: Logger;
  /** The Agent Node's metrics (infra/observability), shared by its source side and every subscription. */
  metrics?: PipelineMetrics;
}

/** A running copy of one agreement in the subscriber's database (schema `lt_share_<agreement>`). */
export interface RunningSubscription {
  spec: SubscriptionSpec;
  sink: Sink;
  pool: Pool;
  stop(): Promise<void>;
}

/** Starts the subscriber sink of one agreement: dedup, versioned upsert, offsets after the commit. */
export async function startSubscription(
  spec: SubscriptionSpec,
  options: SubscriptionOptions,
): Promise<RunningSubscription> {
  const dataset = await agreedDataset(options.registry, options.dictionary, spec);
  const schema = `lt_share_${spec.agreement.replace(/-/g, '_')}`;
  const pool = await createPool({ url: options.databaseUrl, schema });
  const groupId = consumerGroups.subscription(options.agency, spec.agreement);
  const sink = new Sink({
    kafka: options.kafka,
    registry: options.registry,
    pool,
    dataset,
    topic: topics.share(spec.agreement),
    groupId,
    owner: options.agency,
    dedup: new Deduplicator(options.redis, groupId, 7 * 24 * 3600, options.log),
    log: options.log,
    ...(options.metrics ? { metrics: options.metrics } : {}),
  });
  try {
    await sink.start();
  } catch (error) {
    await sink.stop().catch(() => undefined);
    await pool.end();
    throw error;
  }
  options.log.info(
    { agreement: spec.agreement, table: `${quoteIdent(schema)}.${sink.table.name}` },
    'subscription started',
  );
  return {
    spec,
    sink,
    pool,
    stop: async () => {
      await sink.stop();
      await pool.end();
    },
  };
}
