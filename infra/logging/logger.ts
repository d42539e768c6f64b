import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one root logger. Components take a child bound to `{ component, agency, topic, partition }`.
 * Personal fields are redacted wherever they appear in a logged record.
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', file?: string): Logger {
  const destination = file ? pino.destination({ dest: file, mkdir: true, sync: false }) : undefined;
  const options = {
    level,
    base: { service: 'lienthong' },
    redact: {
      paths: ['*.after', '*.record', '*.password', '*.privateKey', 'config.credentials'],
      censor: '[redacted]',
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
