import { LtError, toLtError } from '../errors.ts';

/** kafkajs errors by `name`: the classes are not all exported, and a name is what kafkajs documents. */
const UNREACHABLE = new Set([
  'KafkaJSConnectionError',
  'KafkaJSConnectionClosedError',
  'KafkaJSRequestTimeoutError',
  'KafkaJSBrokerNotFound',
  'KafkaJSNoBrokerAvailableError',
  'KafkaJSGroupCoordinatorNotFound',
  'KafkaJSTimeout',
]);
const AUTHORIZATION = new Set([
  'TOPIC_AUTHORIZATION_FAILED',
  'GROUP_AUTHORIZATION_FAILED',
  'CLUSTER_AUTHORIZATION_FAILED',
]);

interface KafkaJsLike {
  name?: string;
  type?: string;
  message?: string;
  cause?: unknown;
}

/** The innermost cause of a KafkaJSNumberOfRetriesExceeded (what failed on every try). */
function rootOf(error: unknown): KafkaJsLike {
  let current = error as KafkaJsLike;
  while (current.name === 'KafkaJSNumberOfRetriesExceeded' && current.cause)
    current = current.cause as KafkaJsLike;
  return current;
}

/** Whether `error` came from kafkajs (its errors are named KafkaJS…). */
export function isKafkaJsError(error: unknown): boolean {
  return error instanceof Error && error.name.startsWith('KafkaJS');
}

/**
 * A kafkajs failure as one of our codes, at the adapter boundary: no connection → LT_KAFKA_UNREACHABLE, a
 * refused SASL login → LT_UNAUTHORIZED, an ACL refusal → LT_FORBIDDEN; an LtError stays itself, anything else is
 * LT_INTERNAL. `brokers` and `principal` name what was tried, for the message.
 */
export function kafkaFailure(
  error: unknown,
  context: { brokers?: string[]; principal?: string } = {},
): LtError {
  if (error instanceof LtError) return error;
  if (error === null || typeof error !== 'object') return toLtError(error);
  const root = rootOf(error);
  const as = context.principal ? ` as ${context.principal}` : '';
  const message = root.message ?? String(error);
  if (root.name !== undefined && UNREACHABLE.has(root.name))
    return new LtError(
      'LT_KAFKA_UNREACHABLE',
      `cannot reach Kafka${context.brokers ? ` at ${context.brokers.join(',')}` : ''}: ${message}`,
      {
        cause: error,
        hint: 'is the broker up and KAFKA_BROKERS right? (`lienthong broker start` runs one locally)',
      },
    );
  if (root.name === 'KafkaJSSASLAuthenticationError')
    return new LtError('LT_UNAUTHORIZED', `Kafka refused the login${as}: ${message}`, {
      cause: error,
      hint: 'the credential under LIENTHONG_HOME is not the one the broker knows: lienthong credentials rotate',
    });
  if (root.type !== undefined && AUTHORIZATION.has(root.type))
    return new LtError('LT_FORBIDDEN', `Kafka refused a request${as}: ${message}`, {
      cause: error,
      hint: 'the principal lacks an ACL: `lienthong acl sync` grants what docs/security.md lists',
    });
  return toLtError(error);
}
