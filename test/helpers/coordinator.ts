import { Coordinator, type CoordinatorOptions } from '../../platform/coordinator/index.ts';
import { log, testKafka, uniqueName } from './services.ts';

/**
 * A started coordinator on the test's broker, in a consumer group of its own, re-reading its agreements every
 * 200 ms. The caller stops it (before the sinks and clients it feeds, where that order matters).
 */
export async function testCoordinator(
  options: Pick<CoordinatorOptions, 'registry' | 'dictionary' | 'pool' | 'loadAgreements'> &
    Partial<Pick<CoordinatorOptions, 'groupId'>>,
): Promise<Coordinator> {
  const coordinator = new Coordinator({
    kafka: testKafka(),
    log,
    groupId: uniqueName('lt.coordinator.test-'),
    refreshMs: 200,
    ...options,
  });
  await coordinator.start();
  return coordinator;
}
