import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * Keys whose values never reach a log, at any depth: records and their fields (personal data), record keys
 * (a citizen's key is the personal ID), and secrets.
 */
const REDACTED_KEYS = new Set([
  'after',
  'before',
  'record',
  'records',
  'key',
  'keys',
  'password',
  'privateKey',
  'credentials',
  'token',
  'tokens',
  'authorization',
]);

const CENSOR = '[redacted]';

/** `scheme://user:password@host` → `scheme://user:[redacted]@host`, wherever a URL appears in a string. */
export function redactUrlPasswords(text: string): string {
  return text.replace(/([a-z][a-z0-9+.-]*:\/\/[^\s:/@]*:)[^\s@/]+@/gi, `$1${CENSOR}@`);
}

/** A logged object with {@link REDACTED_KEYS} censored and URL passwords removed, at any depth (bounded). */
export function redactLogObject(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return redactUrlPasswords(value);
  if (value === null || typeof value !== 'object' || depth > 8) return value;
  if (Array.isArray(value)) return value.map((item) => redactLogObject(item, depth + 1));
  if (value instanceof Date || Buffer.isBuffer(value)) return value;
  // an error as pino would print it (type, message, stack, its own fields, causes), then redacted
  if (value instanceof Error) return redactLogObject(pino.stdSerializers.errWithCause(value), depth + 1);
  const out: Record<string, unknown> = {};
  for (const [name, inner] of Object.entries(value as Record<string, unknown>))
    out[name] = REDACTED_KEYS.has(name) && inner !== undefined ? CENSOR : redactLogObject(inner, depth + 1);
  return out;
}

/** Where loggers made without a file write: stdout, unless {@link logToStderr} was called. */
let standardDestination: pino.DestinationStream | undefined;

/**
 * Loggers made from now on write to stderr: for a command whose stdout is its output (`--json`), so that a
 * warning logged on the way cannot corrupt what a script parses.
 */
export function logToStderr(): void {
  standardDestination = pino.destination({ dest: 2, sync: true });
}

/**
 * The one root logger. Components take a child bound to `{ component, agency, topic, partition }`.
 * Records, record keys and secrets are redacted wherever they appear in a logged object, and so are passwords
 * inside URLs, in the message too (docs/security.md, *Logs*).
 */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info', file?: string): Logger {
  const destination = file ? pino.destination({ dest: file, mkdir: true, sync: false }) : standardDestination;
  const options = {
    level,
    base: { service: 'lienthong' },
    formatters: {
      log: (object: Record<string, unknown>) => redactLogObject(object) as Record<string, unknown>,
    },
    // errors arrive here already serialized and redacted (above); pino's own would re-serialize them as "Object"
    serializers: {
      err: (value: unknown) =>
        value instanceof Error ? redactLogObject(pino.stdSerializers.errWithCause(value)) : value,
    },
    hooks: {
      logMethod(this: Logger, args: unknown[], method: (...args: unknown[]) => void): void {
        method.apply(
          this,
          args.map((arg) => (typeof arg === 'string' ? redactUrlPasswords(arg) : arg)),
        );
      },
    },
  };
  return destination ? pino(options, destination) : pino(options);
}
