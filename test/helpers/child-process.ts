import { z } from 'zod';
import type { Kafka } from 'kafkajs';
import { readEnv } from '../../infra/config/options.ts';
import { describeError } from '../../infra/errors.ts';
import { createKafka } from '../../infra/kafka/client.ts';
import type { Logger } from '../../infra/logging/logger.ts';
import { httpIdentityFor, kafkaSecurityFor, principals } from '../../infra/security/principals.ts';
import type { Dataset } from '../../schemas/model/dataset.ts';
import { getDataset, loadDictionary, type Dictionary } from '../../schemas/model/dictionary.ts';
import { createRegistryClient, type SchemaRegistry } from '../../schemas/registry/client.ts';

/**
 * What every service a test runs as its own process (to SIGKILL it mid-stream) reads from its environment.
 * LT_DATASET is the test's isolated copy (test/helpers/datasets.ts) of the real dataset LT_DATASET_FROM.
 */
export const ChildEnvSchema = z.object({
  LT_DATABASE_URL: z.string().min(1, 'LT_DATABASE_URL is the PostgreSQL URL'),
  KAFKA_BROKERS: z
    .string()
    .transform((value) => value.split(',').map((broker) => broker.trim()))
    .pipe(z.array(z.string().regex(/^[^\s:]+:\d+$/, 'each broker must be host:port')).min(1)),
  LT_REGISTRY_URL: z.url('LT_REGISTRY_URL is the schema registry URL'),
  LT_DATASET: z.string().min(1),
  LT_DATASET_FROM: z.string().min(1),
  LOG_LEVEL: z.string().default('info'),
});

/** `LT_SCHEMA_VAR` must name a PostgreSQL schema. */
export const schemaName = (variable: string) =>
  z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/, `${variable} is a PostgreSQL schema name`);

/** The real dictionary with the test's isolated dataset added, and that dataset. */
export function childDataset(env: z.infer<typeof ChildEnvSchema>): {
  dictionary: Dictionary;
  dataset: Dataset;
} {
  const real = loadDictionary();
  const dataset = { ...getDataset(real, env.LT_DATASET_FROM), id: env.LT_DATASET };
  return { dictionary: { ...real, datasets: new Map([...real.datasets, [dataset.id, dataset]]) }, dataset };
}

/**
 * The service's broker and registry clients, as the test's super user — KAFKA_PRINCIPAL, or LIENTHONG_INSECURE,
 * from the test (childKafkaEnv) — with client id `<name>-<pid>`.
 */
export function childClients(
  env: z.infer<typeof ChildEnvSchema>,
  name: string,
  log: Logger,
): { kafka: Kafka; registry: SchemaRegistry } {
  return {
    kafka: createKafka({
      brokers: env.KAFKA_BROKERS,
      clientId: `${name}-${process.pid}`,
      log,
      security: kafkaSecurityFor(readEnv(), principals.admin, log),
    }),
    registry: createRegistryClient({
      url: env.LT_REGISTRY_URL,
      ...httpIdentityFor(readEnv(), principals.admin, log),
    }),
  };
}

/** Stops the service on SIGTERM or SIGINT, once (a second signal while stopping changes nothing), then exits 0. */
export function stopOnSignal(stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown());
  process.on('SIGINT', () => void shutdown());
}

/** Runs the process's main; a failure is printed in one line and exits 1. */
export function runChild(main: () => Promise<void>): void {
  main().catch((error: unknown) => {
    console.error(describeError(error));
    process.exit(1);
  });
}
