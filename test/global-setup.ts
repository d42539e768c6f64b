import type { TestProject } from 'vitest/node';
import { readEnv } from '../infra/config/options.ts';
import { describeError } from '../infra/errors.ts';
import type { KafkaSecurity } from '../infra/kafka/client.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { ensureServices } from '../infra/services.ts';
import { dockerAvailable, startContainers } from './helpers/containers.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    services: {
      kafkaBrokers: string[];
      /** The super user of the secure local broker; null for a plaintext one (testcontainers, LIENTHONG_INSECURE=1). */
      kafkaSecurity: KafkaSecurity | null;
      redisUrl: string;
      databaseUrl: string;
    };
  }
}

let stop: (() => Promise<void>) | undefined;

/**
 * One set of services for the whole run; tests isolate themselves by unique topics, schemas and prefixes.
 * Service URLs set in the environment are used as they are. Otherwise, where a Docker engine answers,
 * testcontainers provides all three; elsewhere a local broker is started from the official jars next to
 * the machine's Redis and PostgreSQL.
 */
export async function setup(project: TestProject): Promise<void> {
  const env = readEnv();
  const urlsSet = Boolean(process.env.KAFKA_BROKERS || process.env.REDIS_URL || process.env.DATABASE_URL);
  try {
    if (!urlsSet && process.env.LIENTHONG_DOCKER !== '0' && dockerAvailable()) {
      const containers = await startContainers();
      stop = containers.stop;
      console.log(`services: testcontainers (kafka ${containers.kafkaBrokers.join(',')})`);
      project.provide('services', { ...containers, kafkaSecurity: null });
      return;
    }
    const services = await ensureServices({
      env,
      log: createLogger(process.env.LOG_LEVEL ?? 'warn'),
      brokerDir: `test-${process.pid}`,
    });
    stop = services.stop;
    const where = services.localBroker
      ? `local broker, ${services.admin ? 'TLS + SCRAM, ACLs on' : 'INSECURE plaintext'}, log ${services.localBroker.logFile}`
      : 'KAFKA_BROKERS';
    console.log(
      `services: kafka ${services.brokers.join(',')} (${where}), redis ${env.REDIS_URL}, postgres ${env.DATABASE_URL}; tests on Node ${process.version}`,
    );
    project.provide('services', {
      kafkaBrokers: services.brokers,
      kafkaSecurity: services.admin ?? null,
      redisUrl: env.REDIS_URL,
      databaseUrl: env.DATABASE_URL,
    });
  } catch (error) {
    throw new Error(`test services could not start:\n${describeError(error)}`);
  }
}

export async function teardown(): Promise<void> {
  await stop?.();
}
