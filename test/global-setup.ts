import type { TestProject } from 'vitest/node';
import { readEnv } from '../infra/config/options.ts';
import { describeError } from '../infra/errors.ts';
import { createLogger } from '../infra/logging/logger.ts';
import { ensureServices, type Services } from '../infra/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
  }
}

let services: Services | undefined;

/** One broker for the whole run (KAFKA_BROKERS, or a fresh local one); tests isolate by unique names. */
export async function setup(project: TestProject): Promise<void> {
  const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  try {
    services = await ensureServices({ env: readEnv(), log, brokerDir: `test-${process.pid}` });
  } catch (error) {
    throw new Error(`test services could not start:\n${describeError(error)}`);
  }
  const started = services.localBroker ? ` (local broker, log ${services.localBroker.logFile})` : '';
  console.log(`kafka: ${services.brokers.join(',')}${started}`);
  project.provide('kafkaBrokers', services.brokers);
}

export async function teardown(): Promise<void> {
  await services?.stop();
}
