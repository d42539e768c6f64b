import { join } from 'node:path';
import { readEnv } from '../../infra/config/options.ts';
import { startLocalBroker } from '../../infra/kafka/local-broker.ts';
import { createLogger } from '../../infra/logging/logger.ts';

export interface BrokerOptions {
  port: number;
  controllerPort: number;
  dataDir?: string;
  fresh: boolean;
}

/** Runs a local single-node Kafka in the foreground until Ctrl-C. */
export async function runBroker(options: BrokerOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const broker = await startLocalBroker({
    home: env.LIENTHONG_HOME,
    dataDir: options.dataDir ?? join(env.LIENTHONG_HOME, 'run', 'broker'),
    port: options.port,
    controllerPort: options.controllerPort,
    fresh: options.fresh,
    log,
  });
  console.log(`Kafka is up at ${broker.brokers.join(',')} (log: ${broker.logFile}). Ctrl-C stops it.`);
  console.log(`Other shells: export KAFKA_BROKERS=${broker.brokers.join(',')}`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await broker.stop();
}
