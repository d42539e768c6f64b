import { describe, expect, it } from 'vitest';
import { ensureTopics, lostPositions } from '../../../infra/kafka/admin.ts';
import { testKafka, uniqueName } from '../../helpers/services.ts';

describe('lost positions', () => {
  it('names the partitions where a group would resume below the first record still held', async () => {
    const kafka = testKafka();
    const topic = uniqueName('lt.test.lost-');
    await ensureTopics(kafka, [{ topic, partitions: 2 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({
      topic,
      messages: Array.from({ length: 10 }, (_, index) => ({ partition: 0, value: String(index) })),
    });
    await producer.disconnect();
    const admin = kafka.admin();
    await admin.connect();
    const behind = uniqueName('behind-');
    const ahead = uniqueName('ahead-');
    try {
      await admin.setOffsets({ groupId: behind, topic, partitions: [{ partition: 0, offset: '3' }] });
      await admin.setOffsets({ groupId: ahead, topic, partitions: [{ partition: 0, offset: '8' }] });
      expect(await lostPositions(kafka, behind, topic)).toEqual([]); // nothing removed yet
      // what retention does to records nobody read in time
      await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '6' }] });
    } finally {
      await admin.disconnect();
    }
    expect(await lostPositions(kafka, behind, topic)).toEqual([{ partition: 0, committed: 3, logStart: 6 }]);
    expect(await lostPositions(kafka, ahead, topic)).toEqual([]);
    // a group that never read this topic would miss the removed records as well; partition 1 lost nothing
    expect(await lostPositions(kafka, uniqueName('new-'), topic)).toEqual([
      { partition: 0, committed: -1, logStart: 6 },
    ]);
  });
});
