import { randomUUID } from 'node:crypto';
import type { Kafka } from 'kafkajs';
import { afterAll, inject } from 'vitest';
import { readEnv } from '../../infra/config/options.ts';
import { createKafka, type KafkaSecurity } from '../../infra/kafka/client.ts';
import { createLogger, type Logger } from '../../infra/logging/logger.ts';
import { migrate } from '../../infra/postgres/migrate.ts';
import { createPool, quoteIdent, type Pool } from '../../infra/postgres/pool.ts';
import { createRedis, type Redis } from '../../infra/redis/client.ts';
import { listen } from '../../infra/http/server.ts';
import { platformFetch, type PlatformFetchInit } from './https.ts';
import {
  createRegistryClient,
  registerDatasetSchemas,
  type RegistryEndpoint,
  type SchemaRegistry,
} from '../../schemas/registry/client.ts';
import {
  createRegistryServer,
  secureRegistryOptions,
  type RegistryServerOptions,
} from '../../schemas/registry/server.ts';
import { RegistryStore } from '../../schemas/registry/store.ts';
import { Publisher, VersionLedger, type PublisherOptions } from '../../producers/publisher/index.ts';
import type { Dictionary } from '../../schemas/model/dictionary.ts';

/**
 * Factories for tests: every one makes uniquely named resources (topic, group, PostgreSQL schema, Redis
 * prefix, registry) and registers its own teardown, so test files can run in parallel on shared services.
 */
export const env = readEnv();
const services = inject('services');
export const log: Logger = createLogger(process.env.LOG_LEVEL ?? 'error');

export function uniqueName(prefix: string): string {
  return `${prefix}${randomUUID().replace(/-/g, '').slice(0, 12)}`;
}

/** How tests connect: the secure test broker's super user (tests grant themselves nothing), or plaintext. */
export const kafkaSecurity: KafkaSecurity | undefined = services.kafkaSecurity ?? undefined;

export function testKafka(): Kafka {
  return createKafka({
    brokers: services.kafkaBrokers,
    clientId: uniqueName('test-'),
    log,
    ...(kafkaSecurity ? { security: kafkaSecurity } : {}),
  });
}

/**
 * The environment a service the test runs as its own process needs to reach the test broker: its brokers, and
 * either the super user (`KAFKA_PRINCIPAL`, whose credential is under the same LIENTHONG_HOME) or plaintext.
 */
export function childKafkaEnv(brokers: string[] = services.kafkaBrokers): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers.join(','),
    ...(kafkaSecurity ? { KAFKA_PRINCIPAL: kafkaSecurity.username } : { LIENTHONG_INSECURE: '1' }),
  };
}

/** A pool on a fresh PostgreSQL schema, dropped after the file's tests. */
export async function testPool(): Promise<{ pool: Pool; schema: string }> {
  const schema = uniqueName('t_');
  const pool = await createPool({ url: services.databaseUrl, schema });
  afterAll(async () => {
    await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
    await pool.end();
  });
  return { pool, schema };
}

/** An agency's own database with the Agent Node's tables (ledger, outbox, snapshot checkpoints). */
export async function testAgentDb(): Promise<{ pool: Pool; schema: string; ledger: VersionLedger }> {
  const { pool, schema } = await testPool();
  await migrate(pool, 'agent');
  return { pool, schema, ledger: new VersionLedger(pool) };
}

/** A connected publisher for `agency`, with a ledger of its own, closed after the file's tests. */
export async function testPublisher(
  registry: SchemaRegistry,
  dictionary: Dictionary,
  agency: string,
  options: Partial<Pick<PublisherOptions, 'maxRecordBytes' | 'sendTimeoutMs' | 'compression'>> = {},
): Promise<Publisher> {
  const { ledger } = await testAgentDb();
  await publishDictionary(registry, dictionary, agency);
  const publisher = new Publisher({
    kafka: testKafka(),
    registry,
    dictionary,
    agency,
    ledger,
    log,
    ...options,
  });
  await publisher.connect();
  afterAll(() => publisher.close());
  return publisher;
}

/**
 * What `lienthong dictionary publish` does, for a test's own datasets: registers the source-topic schemas of every
 * dataset in `dictionary` (of `owner` only, when given) through `registry` — the test's super user, a dictionary
 * publisher. Publishers only look their schemas up.
 */
export async function publishDictionary(
  registry: SchemaRegistry,
  dictionary: Dictionary,
  owner?: string,
): Promise<void> {
  for (const dataset of dictionary.datasets.values())
    if (owner === undefined || dataset.owner === owner) await registerDatasetSchemas(registry, dataset);
}

/** A Redis client whose keys all start with a unique prefix, deleted afterwards. */
export async function testRedis(): Promise<Redis> {
  const prefix = `${uniqueName('lt-test:')}:`;
  const redis = await createRedis({ url: services.redisUrl, keyPrefix: prefix });
  afterAll(async () => {
    const keys = await redis.keys(`${prefix}*`); // ioredis does not prefix KEYS patterns
    if (keys.length > 0) await redis.del(...keys.map((key) => key.slice(prefix.length)));
    redis.disconnect();
  });
  return redis;
}

/**
 * How tests reach a registry they serve: as the secure broker's super user (the registry knows principals by the
 * same credentials) trusting the platform CA, or in plaintext against an insecure test broker.
 */
export const registryIdentity: Omit<RegistryEndpoint, 'url'> = kafkaSecurity
  ? {
      auth: { username: kafkaSecurity.username, password: kafkaSecurity.password },
      ca: kafkaSecurity.ca,
    }
  : {};

/** The super user's HTTP Basic header for the platform's HTTP services; none against an insecure broker. */
export function superUserHeaders(): Record<string, string> {
  const auth = registryIdentity.auth;
  return auth
    ? { authorization: `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}` }
    : {};
}

/** A request to a platform HTTP service the test serves, as the super user, trusting the platform CA. */
export function testFetch(url: string, init: PlatformFetchInit = {}): Promise<Response> {
  return platformFetch(url, {
    ...init,
    headers: { ...superUserHeaders(), ...init.headers },
    ...(registryIdentity.ca ? { ca: registryIdentity.ca } : {}),
  });
}

/** The options of a registry a test serves: TLS and authentication like `lienthong dictionary serve`, unless insecure. */
export function testRegistryServerOptions(): RegistryServerOptions {
  return kafkaSecurity ? secureRegistryOptions(env.LIENTHONG_HOME, '127.0.0.1') : {};
}

/** A schema registry server on its own PostgreSQL schema, served securely, with a Confluent client pointed at it. */
export async function testRegistry(): Promise<{ url: string; client: SchemaRegistry; store: RegistryStore }> {
  const { pool } = await testPool();
  await migrate(pool, 'registry');
  const store = new RegistryStore(pool);
  const server = createRegistryServer(store, log, testRegistryServerOptions());
  const url = await listen(server);
  afterAll(async () => {
    await server.close();
  });
  return { url, client: createRegistryClient({ url, ...registryIdentity }), store };
}
