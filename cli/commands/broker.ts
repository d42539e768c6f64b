import { join } from 'node:path';
import { readEnv } from '../../infra/config/options.ts';
import { LtError } from '../../infra/errors.ts';
import { startLocalBroker, startLocalCluster } from '../../infra/kafka/local-broker.ts';
import { createLogger } from '../../infra/logging/logger.ts';

export interface BrokerOptions {
  port: number;
  controllerPort: number;
  dataDir?: string;
  fresh: boolean;
  brokers: number;
  insecure: boolean;
}

/** Runs a local Kafka in the foreground until Ctrl-C: one broker, or a KRaft cluster of `--brokers` nodes. */
export async function runBroker(options: BrokerOptions): Promise<void> {
  const env = readEnv();
  const log = createLogger(env.LOG_LEVEL);
  const secure = !options.insecure && !env.LIENTHONG_INSECURE;
  const dataDir =
    options.dataDir ?? join(env.LIENTHONG_HOME, 'run', options.brokers > 1 ? 'cluster' : 'broker');
  if (options.brokers > 1 && (options.port !== 9092 || options.controllerPort !== 9093))
    throw new LtError('LT_CONFIG_INVALID', '--port and --controller-port apply to a single broker only', {
      hint: 'a cluster picks free ports for its nodes and prints them; drop --port/--controller-port',
    });
  const running =
    options.brokers > 1
      ? await startLocalCluster({
          home: env.LIENTHONG_HOME,
          dataDir,
          size: options.brokers,
          fresh: options.fresh,
          secure,
          log,
        })
      : await startLocalBroker({
          home: env.LIENTHONG_HOME,
          dataDir,
          port: options.port,
          controllerPort: options.controllerPort,
          fresh: options.fresh,
          secure,
          log,
        });
  const what =
    options.brokers > 1
      ? `a ${options.brokers}-broker KRaft cluster (replication factor ${Math.min(3, options.brokers)}, min.insync.replicas ${options.brokers >= 3 ? 2 : 1}; data in ${dataDir})`
      : `Kafka (data in ${dataDir})`;
  console.log(`${what} is up at ${running.brokers.join(',')}. Ctrl-C stops it.`);
  console.log(`Other shells: export KAFKA_BROKERS=${running.brokers.join(',')}`);
  if (secure)
    console.log(
      'Security is on: TLS + SCRAM-SHA-512, nothing allowed unless granted. Next: npx lienthong credentials issue ' +
        '--agency <code> (and --principal lt-coordinator …), then npx lienthong acl sync (docs/security.md)',
    );
  else
    console.log('INSECURE: plaintext, no authentication, no authorization — for a developer’s machine only');
  if (options.brokers > 1)
    console.log('Then: npx lienthong topics sync   (gives every topic its replication)');
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await running.stop();
}
