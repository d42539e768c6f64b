import { join } from 'node:path';
import type { Env } from './config/options.ts';
import type { KafkaSecurity } from './kafka/client.ts';
import { startLocalBroker, type LocalBroker } from './kafka/local-broker.ts';
import type { Logger } from './logging/logger.ts';
import { createPool } from './postgres/pool.ts';
import { createRedis } from './redis/client.ts';

export interface Services {
  brokers: string[];
  /** Set when this process started the broker; stop() stops it again. */
  localBroker: LocalBroker | null;
  /**
   * How the super user connects to the local broker this process started with security on (the default;
   * LIENTHONG_INSECURE=1 starts it in plaintext). Unset for a cluster from KAFKA_BROKERS or a plaintext broker.
   */
  admin?: KafkaSecurity;
  stop(): Promise<void>;
}

export interface ServicesOptions {
  env: Env;
  log: Logger;
  /** Folder name under LIENTHONG_HOME for the local broker's data (one per job: demo, tests, …). */
  brokerDir: string;
  /** Client port for a local broker; 0 = any free port. */
  port?: number;
}

/**
 * Makes sure every service lienthong needs answers: Kafka from KAFKA_BROKERS or a local broker started
 * here, PostgreSQL and Redis at their URLs. Each failure is one clear error saying what to do.
 */
export async function ensureServices({ env, log, brokerDir, port = 0 }: ServicesOptions): Promise<Services> {
  const pool = await createPool({ url: env.DATABASE_URL, max: 1 });
  await pool.end();
  const redis = await createRedis({ url: env.REDIS_URL, cluster: env.REDIS_CLUSTER, keyPrefix: 'lt:' });
  redis.disconnect();

  if (env.KAFKA_BROKERS) {
    log.info({ brokers: env.KAFKA_BROKERS }, 'using the Kafka cluster from KAFKA_BROKERS');
    return { brokers: env.KAFKA_BROKERS, localBroker: null, stop: async () => undefined };
  }
  const localBroker = await startLocalBroker({
    home: env.LIENTHONG_HOME,
    dataDir: join(env.LIENTHONG_HOME, 'run', brokerDir),
    port,
    fresh: true,
    secure: !env.LIENTHONG_INSECURE,
    log,
  });
  if (env.LIENTHONG_INSECURE)
    log.warn('INSECURE: the local broker runs in plaintext without authentication (LIENTHONG_INSECURE=1)');
  return {
    brokers: localBroker.brokers,
    localBroker,
    stop: () => localBroker.stop(),
    ...(localBroker.admin ? { admin: localBroker.admin } : {}),
  };
}
