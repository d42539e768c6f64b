import { readEnv } from '../infra/config/options.ts';
import { createKafka } from '../infra/kafka/client.ts';
import { httpIdentityFor, kafkaSecurityFor, principals } from '../infra/security/principals.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { migrate } from '../infra/postgres/migrate.ts';
import { createPool, type Pool } from '../infra/postgres/pool.ts';
import { Publisher, VersionLedger } from '../producers/publisher/index.ts';
import { createRegistryClient } from '../schemas/registry/client.ts';
import type { Kafka } from 'kafkajs';
import { benchDictionary } from './setup.ts';

/** The publish path of BCA's Agent Node as a benchmark child process builds it from its environment. */
export async function benchPublisher(): Promise<{
  publisher: Publisher;
  pool: Pool;
  kafka: Kafka;
  datasetId: string;
}> {
  const log = createLogger('error');
  const { dictionary, datasetId } = benchDictionary(process.env.BENCH_DATASET!);
  const pool = await createPool({
    url: process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/postgres',
    schema: process.env.BENCH_AGENT_SCHEMA!,
  });
  await migrate(pool, 'agent');
  const kafka = createKafka({
    brokers: process.env.KAFKA_BROKERS!.split(','),
    clientId: 'bench-agent',
    log,
    security: kafkaSecurityFor(readEnv(), principals.admin, log), // KAFKA_PRINCIPAL from the bench
  });
  const publisher = new Publisher({
    kafka,
    registry: createRegistryClient({
      url: process.env.SCHEMA_REGISTRY_URL!,
      ...httpIdentityFor(readEnv(), principals.admin, log),
    }),
    dictionary,
    agency: 'BCA',
    ledger: new VersionLedger(pool),
    log,
  });
  await publisher.connect();
  await publisher.publishBatch(datasetId, []); // looks the schemas up and connects before timing
  return { publisher, pool, kafka, datasetId };
}
