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
import { createRegistryClient, type SchemaRegistry } from '../../schemas/registry/client.ts';
import { createRegistryServer } from '../../schemas/registry/server.ts';
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

/** A schema registry server on its own PostgreSQL schema, with a Confluent client pointed at it. */
export async function testRegistry(): Promise<{ url: string; client: SchemaRegistry; store: RegistryStore }> {
  const { pool } = await testPool();
  await migrate(pool, 'registry');
  const store = new RegistryStore(pool);
  const server = createRegistryServer(store, log);
  const url = await listen(server);
  afterAll(async () => {
    await server.close();
  });
  return { url, client: createRegistryClient(url), store };
}
