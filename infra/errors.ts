/**
 * Every error lienthong raises carries a stable code. Retriability is data, never guessed from a message.
 * Adapters (Kafka, PostgreSQL, Redis, HTTP) translate their own failures into these codes at the boundary.
 */
export const ErrorCodes = {
  // the command line
  LT_USAGE: {
    retriable: false,
    summary:
      'the command line is wrong: a flag or argument is missing, unknown, malformed or contradicts another',
  },
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
  LT_TOPIC_CONFLICT: {
    retriable: false,
    summary: 'a topic differs from its wanted settings in a way only an operator may change',
  },
  LT_CONSUMER_STOPPED: {
    retriable: false,
    summary: 'a Kafka consumer stopped after a failure it does not restart from',
  },
  // data dictionary
  LT_DICTIONARY_INVALID: { retriable: false, summary: 'a dictionary file is invalid' },
  LT_DATASET_UNKNOWN: { retriable: false, summary: 'the dataset is not in the dictionary' },
  LT_SCHEMA_INCOMPATIBLE: {
    retriable: false,
    summary: 'the registry refuses the schema change under its compatibility level',
  },
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
  LT_SCHEMA_NOT_REGISTERED: {
    retriable: true,
    summary:
      "the registry does not hold the dictionary's schema of the dataset yet (lienthong dictionary publish)",
  },
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
  // operators' commands
  LT_ARGUMENT_INVALID: { retriable: false, summary: 'a command argument breaks its rule' },
  LT_DEAD_LETTER_UNKNOWN: { retriable: false, summary: 'no open dead letter is kept at that address' },
  LT_GROUP_UNKNOWN: {
    retriable: false,
    summary: 'no consumer group has this id (it has no members and no offsets)',
  },
  LT_TOPIC_UNKNOWN: { retriable: false, summary: 'the topic does not exist, or the group does not read it' },
  LT_GROUP_ACTIVE: {
    retriable: false,
    summary: 'the consumer group has live members; its offsets can be moved only while it is stopped',
  },
  LT_OFFSET_OUT_OF_RANGE: {
    retriable: false,
    summary: 'the offset is outside what the partition holds (its log start to its end)',
  },
  LT_BEFORE_RETAINED_LOG: {
    retriable: false,
    summary: 'the time is before the start of the retained log: records after it are already gone',
  },
  LT_REPLAY_INVALID: { retriable: false, summary: 'the replay request breaks a rule' },
  LT_SINK_UNKNOWN: { retriable: false, summary: 'no sink of that name exists to rebuild' },
  LT_REBUILD_BUSY: { retriable: false, summary: 'a rebuild of this sink is already running' },
  LT_REBUILD_MISMATCH: {
    retriable: false,
    summary: 'the rebuilt copy differs from the live copy; nothing was swapped',
  },
  // data packages on storage media (decree method (d))
  LT_PACKAGE_INVALID: {
    retriable: false,
    summary: 'the package is damaged or does not match its manifest; nothing was loaded',
  },
  LT_PACKAGE_SIGNATURE: {
    retriable: false,
    summary: "the package's manifest is not signed by this platform's key; nothing was loaded",
  },
  LT_PACKAGE_RECIPIENT: {
    retriable: false,
    summary: 'the package is meant for another recipient; nothing was loaded',
  },
  LT_PACKAGE_KEY_MISSING: {
    retriable: false,
    summary: 'a key the package needs is not where it was looked for',
  },
  LT_PACKAGE_IMPORT_BUSY: {
    retriable: true,
    summary: 'another import of the same package into the same target is running',
  },
  // query API (decree method (a))
  LT_QUERY_NOT_FOUND: {
    retriable: false,
    summary: 'no record under this key within the agreement (or it did not exist at asOf)',
  },
  LT_CURSOR_INVALID: { retriable: false, summary: 'the cursor is not one this query issued' },
  LT_RATE_LIMITED: { retriable: true, summary: 'too many requests from this agency; retry after a while' },
  LT_METHOD_NOT_ALLOWED: {
    retriable: false,
    summary: 'the agreement does not allow this decree method (sync, query or media)',
  },
  LT_INTERNAL: { retriable: false, summary: 'an unexpected failure; the platform log has the details' },
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/**
 * The exit code of the `lienthong` command for each kind of outcome (docs/cli.md). Scripts may rely on these
 * numbers: they never change meaning.
 */
export const ExitCodes = {
  /** Everything the command was asked to do was done. */
  ok: 0,
  /** An unexpected failure (a bug, or a failure lienthong has no code for); the message and log say more. */
  internal: 1,
  /** The command line is wrong: an unknown command or flag, a missing or malformed argument. */
  usage: 2,
  /** The configuration is wrong: the environment, a credential, a dictionary or config file, or a setting
   * only an operator may change (a topic's partitions, a sink table's columns). */
  configuration: 3,
  /** A service the command needs did not answer or did not start: Kafka, PostgreSQL, Redis, the registry. */
  unreachable: 4,
  /** The platform understood and refused: an invalid record or agreement, an unknown id, a forbidden step,
   * a schema change the registry would refuse. */
  refused: 5,
} as const;

export type ExitKind = keyof typeof ExitCodes;

/** Which kind of outcome each error code is: the one place an exit code is derived from (exitCodeOf). */
export const ExitKinds = {
  LT_USAGE: 'usage',
  LT_CONFIG_INVALID: 'configuration',
  LT_JAVA_MISSING: 'configuration',
  LT_MAVEN_MISSING: 'configuration',
  LT_KAFKA_JARS_FETCH_FAILED: 'unreachable',
  LT_PORT_TAKEN: 'configuration',
  LT_KAFKA_START_FAILED: 'unreachable',
  LT_KAFKA_UNREACHABLE: 'unreachable',
  LT_POSTGRES_UNREACHABLE: 'unreachable',
  LT_REDIS_UNREACHABLE: 'unreachable',
  LT_REGISTRY_UNREACHABLE: 'unreachable',
  LT_TOPIC_CONFLICT: 'configuration',
  LT_CONSUMER_STOPPED: 'internal',
  LT_DICTIONARY_INVALID: 'configuration',
  LT_DATASET_UNKNOWN: 'refused',
  LT_SCHEMA_INCOMPATIBLE: 'refused',
  LT_RECORD_INVALID: 'refused',
  LT_NOT_OWNER: 'refused',
  LT_EVENT_ID_REUSED: 'refused',
  LT_VERSION_STALE: 'refused',
  LT_RECORD_TOO_LARGE: 'refused',
  LT_BATCH_REJECTED: 'refused',
  LT_MALFORMED_INPUT: 'refused',
  LT_UNAUTHORIZED: 'refused',
  LT_FORBIDDEN: 'refused',
  LT_PUBLISH_FAILED: 'unreachable',
  LT_DECODE_FAILED: 'refused',
  LT_SCHEMA_UNKNOWN: 'refused',
  LT_SCHEMA_NOT_OF_TOPIC: 'refused',
  LT_SINK_SCHEMA_CONFLICT: 'configuration',
  LT_AGREEMENT_UNKNOWN: 'refused',
  LT_AGREEMENT_EXISTS: 'refused',
  LT_AGREEMENT_INVALID: 'refused',
  LT_AGREEMENT_TRANSITION: 'refused',
  LT_SCHEMA_NOT_REGISTERED: 'refused',
  LT_ARGUMENT_INVALID: 'usage',
  LT_DEAD_LETTER_UNKNOWN: 'refused',
  LT_GROUP_UNKNOWN: 'refused',
  LT_TOPIC_UNKNOWN: 'refused',
  LT_GROUP_ACTIVE: 'refused',
  LT_OFFSET_OUT_OF_RANGE: 'refused',
  LT_BEFORE_RETAINED_LOG: 'refused',
  LT_REPLAY_INVALID: 'usage',
  LT_SINK_UNKNOWN: 'refused',
  LT_REBUILD_BUSY: 'refused',
  LT_REBUILD_MISMATCH: 'refused',
  LT_PACKAGE_INVALID: 'refused',
  LT_PACKAGE_SIGNATURE: 'refused',
  LT_PACKAGE_RECIPIENT: 'refused',
  LT_PACKAGE_KEY_MISSING: 'configuration',
  LT_PACKAGE_IMPORT_BUSY: 'refused',
  LT_QUERY_NOT_FOUND: 'refused',
  LT_CURSOR_INVALID: 'refused',
  LT_RATE_LIMITED: 'refused',
  LT_METHOD_NOT_ALLOWED: 'refused',
  LT_INTERNAL: 'internal',
} as const satisfies Record<ErrorCode, ExitKind>;

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

/**
 * The exit code the `lienthong` command ends with after `error` (ExitCodes, docs/cli.md): by its LtError code
 * (ExitKinds), LT_INTERNAL's for anything else.
 */
export function exitCodeOf(error: unknown): number {
  return ExitCodes[error instanceof LtError ? ExitKinds[error.code] : 'internal'];
}

/** One line for a person: what went wrong and what to do next. */
export function describeError(error: unknown): string {
  if (error instanceof LtError) {
    return `${error.code}: ${error.message}${error.hint ? `\n  → ${error.hint}` : ''}`;
  }
  return error instanceof Error ? error.message : String(error);
}
