import { Agent as HttpAgent, get as httpGet } from 'node:http';
import { Agent as HttpsAgent, get as httpsGet } from 'node:https';
import { SchemaRegistry as ConfluentClient, SchemaType } from '@kafkajs/confluent-schema-registry';
import { LtError } from '../../infra/errors.ts';
import { subjects, topics } from '../../infra/kafka/topics.ts';
import { changeEventSchema, keySchema, type AvroSchema } from '../avro/generate.ts';
import { avroTypeOptions } from '../avro/logical-types.ts';
import { compatibilityOf, type Dataset } from '../model/dataset.ts';
import type { CompatibilityLevel } from './compatibility.ts';

/** How long one registry lookup that the client library does not cover may take. */
const LOOKUP_TIMEOUT_MS = 5_000;
/** The most a lookup answer may be: a list of subject versions is small. */
const LOOKUP_MAX_BYTES = 1024 * 1024;

/** Where a registry is and how to reach it: the principal's login (HTTP Basic) and the CA its TLS is signed by. */
export interface RegistryEndpoint {
  url: string;
  auth?: { username: string; password: string } | undefined;
  /** PEM of the CA to trust for an https URL (the platform CA); the system's CAs when absent. */
  ca?: string | undefined;
}

/**
 * A Confluent registry client (ours or an external one) that decodes our logical types, plus the one lookup
 * the library lacks: which subjects a schema id is registered under (GET /schemas/ids/{id}/versions, in the
 * Confluent API since 5.5). Over https it trusts the endpoint's CA and keeps its connections alive.
 */
export class SchemaRegistry extends ConfluentClient {
  readonly url: string;
  /** The HTTP Basic header of the principal this client authenticates as, if any. */
  private readonly authorization: string | undefined;
  private readonly agent: HttpAgent;

  constructor(endpoint: RegistryEndpoint) {
    const secure = endpoint.url.startsWith('https:');
    const agent = secure
      ? new HttpsAgent({ keepAlive: true, ...(endpoint.ca ? { ca: endpoint.ca } : {}) })
      : new HttpAgent({ keepAlive: true });
    super(
      {
        host: endpoint.url,
        clientId: 'lienthong',
        retry: { retries: 2 },
        agent,
        ...(endpoint.auth ? { auth: endpoint.auth } : {}),
      },
      { [SchemaType.AVRO]: avroTypeOptions() },
    );
    this.agent = agent;
    this.url = endpoint.url.replace(/\/+$/, '');
    this.authorization = endpoint.auth
      ? `Basic ${Buffer.from(`${endpoint.auth.username}:${endpoint.auth.password}`).toString('base64')}`
      : undefined;
  }

  /**
   * The subjects schema `id` is registered under; null when the registry does not know the id. Throws
   * LT_REGISTRY_UNREACHABLE when the registry does not answer in time or answers anything else.
   */
  async subjectsOfSchema(id: number): Promise<string[] | null> {
    const where = `${this.url}/schemas/ids/${id}/versions`;
    const { status, body } = await this.getJson(where);
    if (status === 404) return null;
    if (status !== 200)
      throw new LtError('LT_REGISTRY_UNREACHABLE', `GET ${where} answered ${status}`, {
        details: { status },
      });
    if (!Array.isArray(body))
      throw new LtError('LT_REGISTRY_UNREACHABLE', `GET ${where} did not answer a list of subject versions`);
    return body.map((entry) => String((entry as { subject?: unknown }).subject));
  }

  /** A bounded GET through this client's agent (so the same CA, login and connections). */
  private getJson(where: string): Promise<{ status: number; body: unknown }> {
    const get = where.startsWith('https:') ? httpsGet : httpGet;
    const headers: Record<string, string> = { accept: 'application/vnd.schemaregistry.v1+json' };
    if (this.authorization) headers.authorization = this.authorization;
    const unreachable = (why: string, cause?: unknown): LtError =>
      new LtError('LT_REGISTRY_UNREACHABLE', `GET ${where} failed: ${why}`, {
        ...(cause ? { cause } : {}),
        hint: 'is the schema registry running and is its CA trusted? (SCHEMA_REGISTRY_URL, `lienthong dictionary serve`)',
      });
    return new Promise((resolve, reject) => {
      const request = get(where, { agent: this.agent, headers, timeout: LOOKUP_TIMEOUT_MS }, (response) => {
        const chunks: Buffer[] = [];
        let size = 0;
        response.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > LOOKUP_MAX_BYTES)
            request.destroy(unreachable(`the answer is over ${LOOKUP_MAX_BYTES} bytes`));
          else chunks.push(chunk);
        });
        response.on('end', () => {
          const status = response.statusCode ?? 0;
          try {
            resolve({
              status,
              body: status === 200 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : null,
            });
          } catch (cause) {
            reject(unreachable('the answer is not JSON', cause));
          }
        });
        response.on('error', (cause) => reject(unreachable(cause.message, cause)));
      });
      request.on('timeout', () => request.destroy(unreachable(`no answer within ${LOOKUP_TIMEOUT_MS} ms`)));
      request.on('error', (cause) =>
        reject(cause instanceof LtError ? cause : unreachable(cause.message, cause)),
      );
    });
  }
}

/**
 * A client of the registry at `endpoint.url`, authenticating as `endpoint.auth` (a principal's name and password,
 * HTTP Basic) when given — a secure registry answers 401 without it — and trusting `endpoint.ca` over https.
 */
export function createRegistryClient(endpoint: RegistryEndpoint): SchemaRegistry {
  return new SchemaRegistry(endpoint);
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

/** The registry id of `schema` under `subject`; LT_SCHEMA_NOT_REGISTERED when the subject does not hold it. */
async function lookupSubject(registry: SchemaRegistry, subject: string, schema: AvroSchema): Promise<number> {
  try {
    return await registry.getRegistryIdBySchema(subject, {
      type: SchemaType.AVRO,
      schema: JSON.stringify(schema),
    });
  } catch (cause) {
    const status =
      (cause as { status?: number }).status ??
      (cause as { originalError?: { status?: number } }).originalError?.status;
    if (status === 404 || /not found/i.test((cause as Error).message ?? ''))
      throw new LtError(
        'LT_SCHEMA_NOT_REGISTERED',
        `the registry holds no ${subject} with the dictionary's schema`,
        {
          cause,
          details: { subject },
          hint: 'the dictionary publisher registers every dataset: lienthong dictionary publish (as lt-registry), then try again',
        },
      );
    if (status === undefined)
      throw new LtError(
        'LT_REGISTRY_UNREACHABLE',
        `looking up ${subject} failed: ${(cause as Error).message}`,
        {
          cause,
          hint: 'is the schema registry running? (SCHEMA_REGISTRY_URL, or `lienthong dictionary serve`)',
        },
      );
    throw cause;
  }
}

/**
 * The ids of a dataset's source-topic schemas as the dictionary publisher registered them — a publisher only looks
 * up: the Shared Data Dictionary is the one author of schemas (docs/security.md). Refused with
 * LT_SCHEMA_NOT_REGISTERED (retriable: it holds once `lienthong dictionary publish` has run) when the registry does
 * not hold the dictionary's current schema.
 */
export async function lookupDatasetSchemas(
  registry: SchemaRegistry,
  dataset: Dataset,
): Promise<RegisteredDataset> {
  const topic = topics.source(dataset.id);
  const [keySchemaId, valueSchemaId] = await Promise.all([
    lookupSubject(registry, subjects.key(topic), keySchema(dataset)),
    lookupSubject(registry, subjects.value(topic), changeEventSchema(dataset)),
  ]);
  return { topic, keySchemaId, valueSchemaId };
}
