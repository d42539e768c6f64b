import type { Kafka } from 'kafkajs';
import { topics } from '../../infra/kafka/topics.ts';
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

/** How many records the share topic of `agreementId` holds (0 while the coordinator has not made it). */
export async function shareTopicSize(kafka: Kafka, agreementId: string): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    if (!(await admin.listTopics()).includes(topics.share(agreementId))) return 0;
    const offsets = await admin.fetchTopicOffsets(topics.share(agreementId));
    return offsets.reduce((sum, partition) => sum + Number(partition.high), 0);
  } finally {
    await admin.disconnect();
  }
}
