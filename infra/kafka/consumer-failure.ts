import type { Consumer } from 'kafkajs';
import { LtError } from '../errors.ts';
import type { Logger } from '../logging/logger.ts';

/**
 * kafkajs restarts a consumer after a retriable failure, but after any other — a non-retriable broker error,
 * or an error a batch handler threw that no retry can fix — it stops for good while the process lives on,
 * reading nothing. This turns that moment into something a service can act on: logged at error level and
 * passed to `onStopped` as LT_CONSUMER_STOPPED with the cause. Restarts are logged at warn level.
 */
export function watchConsumer(
  consumer: Consumer,
  what: string,
  log: Logger,
  onStopped: (error: LtError) => void,
): void {
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    const cause = payload.error;
    if (payload.restart) {
      log.warn({ err: cause }, `${what}: consumer failed; kafkajs restarts it`);
      return;
    }
    const error = new LtError('LT_CONSUMER_STOPPED', `${what} stopped reading: ${cause.message}`, {
      cause,
      hint: 'nothing is lost (offsets were not committed past the failure); fix the cause and restart the service',
    });
    log.error({ err: cause }, error.message);
    onStopped(error);
  });
}

/** A promise and the function that resolves it: where a component keeps "it failed for good". */
export function failureSignal(): { failed: Promise<LtError>; fail: (error: LtError) => void } {
  let fail: (error: LtError) => void = () => undefined;
  const failed = new Promise<LtError>((resolve) => (fail = resolve));
  return { failed, fail };
}
