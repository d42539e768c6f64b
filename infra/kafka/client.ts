import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from '../logging/logger.ts';

const LEVELS: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

/**
 * How a client proves who it is: SCRAM-SHA-512 over TLS, trusting only the platform CA (docs/security.md).
 * kafkajs refuses nothing by itself here, so this is the one place both are set together.
 */
export interface KafkaSecurity {
  /** The CA certificate(s) to trust, PEM. */
  ca: string;
  username: string;
  password: string;
}

export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  log: Logger;
  /** TLS + SCRAM-SHA-512 as this principal. Unset: plaintext, which only a developer's local broker accepts. */
  security?: KafkaSecurity;
  /** Extra kafkajs settings (ssl, sasl) for a real cluster. */
  overrides?: Partial<KafkaConfig>;
}

/** A kafkajs client whose own logs go through pino, one level down (kafkajs is chatty about retries). */
export function createKafka({ brokers, clientId, log, security, overrides }: KafkaClientOptions): Kafka {
  const kafkaLog = log.child({ component: 'kafkajs' });
  return new Kafka({
    brokers,
    clientId,
    connectionTimeout: 5_000,
    requestTimeout: 30_000,
    retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 5_000 },
    logLevel: logLevel.WARN,
    logCreator:
      () =>
      ({ level, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        const method =
          level === logLevel.ERROR ? 'warn' : level === logLevel.WARN ? 'info' : (LEVELS[level] ?? 'debug');
        kafkaLog[method](rest, message);
      },
    ...(security
      ? {
          ssl: { ca: [security.ca], rejectUnauthorized: true },
          sasl: { mechanism: 'scram-sha-512', username: security.username, password: security.password },
        }
      : {}),
    ...overrides,
  });
}
