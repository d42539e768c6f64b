import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
import { LtError } from '../../infra/errors.ts';
import { subjects, topics } from '../../infra/kafka/topics.ts';
import { changeEventSchema, keySchema, type AvroSchema } from '../avro/generate.ts';
import { avroTypeOptions } from '../avro/logical-types.ts';
import { compatibilityOf, type Dataset } from '../model/dataset.ts';
import type { CompatibilityLevel } from './compatibility.ts';

/** How long one registry lookup that the client library does not cover may take. */
const LOOKUP_TIMEOUT_MS = 5_000;

/**
 * A Confluent registry client (ours or an external one) that decodes our logical types, plus the one lookup
 * the library lacks: which subjects a schema id is registered under (GET /schemas/ids/{id}/versions, in the
 * Confluent API since 5.5).
 */
export class SchemaRegistry extends ConfluentClient {
  readonly url: string;
  /** The HTTP Basic header of the principal this client authenticates as, if any. */
  private readonly authorization: string | undefined;

  constructor(url: string, auth?: { username: string; password: string }) {
    super(
      { host: url, clientId: 'lienthong', retry: { retries: 2 }, ...(auth ? { auth } : {}) },
      { [SchemaType.AVRO]: avroTypeOptions() },
    );
    this.url = url.replace(/\/+$/, '');
    this.authorization = auth
      ? `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`
      : undefined;
  }

  /**
   * The subjects schema `id` is registered under; null when the registry does not know the id. Throws
   * LT_REGISTRY_UNREACHABLE when the registry does not answer in time or answers anything else.
   */
  async subjectsOfSchema(id: number): Promise<string[] | null> {
    const where = `${this.url}/schemas/ids/${id}/versions`;
    let response: Response;
    try {
      response = await fetch(where, {
        signal: AbortSignal.timeout(LOOKUP_TIMEOUT_MS),
        ...(this.authorization ? { headers: { authorization: this.authorization } } : {}),
      });
    } catch (cause) {
      throw new LtError('LT_REGISTRY_UNREACHABLE', `GET ${where} failed: ${(cause as Error).message}`, {
        cause,
      });
    }
    if (response.status === 404) return null;
    if (!response.ok)
      throw new LtError('LT_REGISTRY_UNREACHABLE', `GET ${where} answered ${response.status}`, {
        details: { status: response.status },
      });
    const body = (await response.json()) as unknown;
    if (!Array.isArray(body))
      throw new LtError('LT_REGISTRY_UNREACHABLE', `GET ${where} did not answer a list of subject versions`);
    return body.map((entry) => String((entry as { subject?: unknown }).subject));
  }
}

/**
 * A client of the registry at `url`, authenticating as `auth` (a principal's name and password, HTTP Basic) when
 * given — a secure registry answers 401 without it.
 */
export function createRegistryClient(
  url: string,
  auth?: { username: string; password: string },
): SchemaRegistry {
  return new SchemaRegistry(url, auth);
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
