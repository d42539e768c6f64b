import { SchemaRegistry, SchemaType } from '@kafkajs/confluent-schema-registry';
import { LtError } from '../../infra/errors.ts';
import { subjects, topics } from '../../infra/kafka/topics.ts';
import { changeEventSchema, keySchema, type AvroSchema } from '../avro/generate.ts';
import { avroTypeOptions } from '../avro/logical-types.ts';
import { compatibilityOf, type Dataset } from '../model/dataset.ts';
import type { CompatibilityLevel } from './compatibility.ts';

export type { SchemaRegistry };

/** A Confluent registry client (ours or an external one) that decodes our logical types. */
export function createRegistryClient(url: string): SchemaRegistry {
  return new SchemaRegistry(
    { host: url, clientId: 'lienthong', retry: { retries: 2 } },
    { [SchemaType.AVRO]: avroTypeOptions() },
  );
}

export interface RegisteredDataset {
  topic: string;
  keySchemaId: number;
  valueSchemaId: number;
}

async function registerSubject(
  registry: SchemaRegistry,
  subject: string,
  schema: AvroSchema,
  compatibility: CompatibilityLevel,
): Promise<number> {
  try {
    const { id } = await registry.register(
      { type: SchemaType.AVRO, schema: JSON.stringify(schema) },
      { subject, compatibility: compatibility as never },
    );
    return id;
  } catch (cause) {
    const status = (cause as { status?: number }).status;
    if (status === undefined) {
      throw new LtError(
        'LT_REGISTRY_UNREACHABLE',
        `registering ${subject} failed: ${(cause as Error).message}`,
        {
          cause,
          hint: 'is the schema registry running? (SCHEMA_REGISTRY_URL, or `lienthong dictionary serve`)',
        },
      );
    }
    throw cause;
  }
}

/** Registers a topic's key and value subjects for a dataset (idempotent: the same schema keeps its id). */
export async function registerTopicSchemas(
  registry: SchemaRegistry,
  topic: string,
  dataset: Dataset,
  compatibility: CompatibilityLevel,
): Promise<RegisteredDataset> {
  const keySchemaId = await registerSubject(registry, subjects.key(topic), keySchema(dataset), compatibility);
  const valueSchemaId = await registerSubject(
    registry,
    subjects.value(topic),
    changeEventSchema(dataset),
    compatibility,
  );
  return { topic, keySchemaId, valueSchemaId };
}

/** Registers a dataset's source-topic subjects with the dataset's compatibility level. */
export async function registerDatasetSchemas(
  registry: SchemaRegistry,
  dataset: Dataset,
): Promise<RegisteredDataset> {
  return registerTopicSchemas(registry, topics.source(dataset.id), dataset, compatibilityOf(dataset));
}
