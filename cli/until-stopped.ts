import type { LtError } from '../infra/errors.ts';

/**
 * Waits for Ctrl-C (SIGINT) or SIGTERM, or for one of the services to fail for good (a consumer that kafkajs
 * will not restart). Returns that failure, or null when stopped by a signal; the caller stops everything
 * either way, then throws the failure so the process exits non-zero and a supervisor can restart it.
 */
export async function untilStopped(failures: Promise<LtError>[] = []): Promise<LtError | null> {
  let onSignal: () => void = () => undefined;
  const signalled = new Promise<null>((resolve) => {
    onSignal = () => resolve(null);
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
  });
  try {
    return await Promise.race([signalled, ...failures]);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
