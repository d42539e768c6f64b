/**
 * Every error lienthong raises carries a stable code. Retriability is data, never guessed from a message.
 * Adapters (Kafka, PostgreSQL, Redis, HTTP) translate their own failures into these codes at the boundary.
 */
export const ErrorCodes = {
  // set-up and environment
  LT_CONFIG_INVALID: { retriable: false, summary: 'configuration is invalid' },
  LT_JAVA_MISSING: { retriable: false, summary: 'Java 17+ is required to run the local Kafka broker' },
  LT_MAVEN_MISSING: { retriable: false, summary: 'Maven is required to fetch the Kafka broker jars' },
  LT_KAFKA_JARS_FETCH_FAILED: { retriable: true, summary: 'could not fetch the Kafka broker jars' },
  LT_PORT_TAKEN: { retriable: false, summary: 'a port the local broker needs is taken' },
  LT_KAFKA_START_FAILED: { retriable: false, summary: 'the local Kafka broker did not come up' },
  LT_KAFKA_UNREACHABLE: { retriable: true, summary: 'Kafka is unreachable' },
  LT_POSTGRES_UNREACHABLE: { retriable: true, summary: 'PostgreSQL is unreachable' },
  LT_REDIS_UNREACHABLE: { retriable: true, summary: 'Redis is unreachable' },
  LT_REGISTRY_UNREACHABLE: { retriable: true, summary: 'the schema registry is unreachable' },
  LT_CONSUMER_STOPPED: {
    retriable: false,
    summary: 'a Kafka consumer stopped after a failure it does not restart from',
  },
  // data dictionary
  LT_DICTIONARY_INVALID: { retriable: false, summary: 'a dictionary file is invalid' },
  LT_DATASET_UNKNOWN: { retriable: false, summary: 'the dataset is not in the dictionary' },
  // records
  LT_RECORD_INVALID: { retriable: false, summary: 'the record does not match its dataset' },
  LT_NOT_OWNER: { retriable: false, summary: 'the agency does not own the dataset it tried to publish' },
  LT_EVENT_ID_REUSED: {
    retriable: false,
    summary: 'the eventId was already published with other content',
  },
  LT_VERSION_STALE: {
    retriable: false,
    summary: 'the version is not higher than the last one published for the key',
  },
  LT_RECORD_TOO_LARGE: { retriable: false, summary: 'the encoded record exceeds the size limit' },
  LT_BATCH_REJECTED: {
    retriable: false,
    summary: 'not published: another record of the all-or-nothing batch was refused',
  },
  LT_MALFORMED_INPUT: { retriable: false, summary: 'the request body could not be parsed' },
  LT_UNAUTHORIZED: { retriable: false, summary: 'missing or unknown credentials' },
  LT_FORBIDDEN: { retriable: false, summary: 'the authenticated principal may not do this' },
  LT_PUBLISH_FAILED: { retriable: true, summary: 'the broker did not acknowledge the events in time' },
  LT_DECODE_FAILED: { retriable: false, summary: 'the record could not be decoded' },
  LT_SCHEMA_UNKNOWN: { retriable: false, summary: 'the record names a schema id the registry does not know' },
  LT_SCHEMA_NOT_OF_TOPIC: {
    retriable: false,
    summary: "the record names a schema that is not registered under its topic's subject",
  },
  LT_SINK_SCHEMA_CONFLICT: {
    retriable: false,
    summary: 'the sink table has a column the dataset changed or dropped; it needs an explicit migration',
  },
  // sharing agreements
  LT_AGREEMENT_UNKNOWN: { retriable: false, summary: 'no sharing agreement has this id' },
  LT_AGREEMENT_EXISTS: { retriable: false, summary: 'a sharing agreement with this id already exists' },
  LT_AGREEMENT_INVALID: { retriable: false, summary: 'the sharing agreement breaks a rule' },
  LT_AGREEMENT_TRANSITION: {
    retriable: false,
    summary: 'the sharing agreement cannot take this step from its current status',
  },
  // query API (decree method (a))
  LT_QUERY_NOT_FOUND: {
    retriable: false,
    summary: 'no record under this key within the agreement (or it did not exist at asOf)',
  },
  LT_CURSOR_INVALID: { retriable: false, summary: 'the cursor is not one this query issued' },
  LT_RATE_LIMITED: { retriable: true, summary: 'too many requests from this agency; retry after a while' },
  LT_INTERNAL: { retriable: false, summary: 'an unexpected failure; the platform log has the details' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export interface LtErrorOptions {
  /** Structured facts about the failure: where, which field, which value. Never secrets. */
  details?: Record<string, unknown>;
  cause?: unknown;
  /** What the person reading this should do next. */
  hint?: string;
}

export class LtError extends Error {
  readonly code: ErrorCode;
  readonly retriable: boolean;
  readonly details: Record<string, unknown>;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: LtErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'LtError';
    this.code = code;
    this.retriable = ErrorCodes[code].retriable;
    this.details = options.details ?? {};
    this.hint = options.hint;
  }
}

/** Any thrown value as an LtError: itself when it is one, else LT_INTERNAL with it as the cause. */
export function toLtError(error: unknown): LtError {
  if (error instanceof LtError) return error;
  return new LtError('LT_INTERNAL', error instanceof Error ? error.message : String(error), { cause: error });
}

export function isLtError(error: unknown, code?: ErrorCode): error is LtError {
  return error instanceof LtError && (code === undefined || error.code === code);
}

/** One line for a person: what went wrong and what to do next. */
export function describeError(error: unknown): string {
  if (error instanceof LtError) {
    return `${error.code}: ${error.message}${error.hint ? `\n  → ${error.hint}` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}
