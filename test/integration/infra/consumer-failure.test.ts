import { describe, expect, it } from 'vitest';
import { LtError } from '../../../infra/errors.ts';
import { ensureTopics } from '../../../infra/kafka/admin.ts';
import { failureSignal, watchConsumer } from '../../../infra/kafka/consumer-failure.ts';
import { log, testKafka, uniqueName } from '../../helpers/services.ts';

describe('a consumer kafkajs will not restart is reported, not left silent', () => {
  it('turns a non-retriable failure of the handler into LT_CONSUMER_STOPPED with its cause', async () => {
    const kafka = testKafka();
    const topic = uniqueName('lt.test.crash-');
    await ensureTopics(kafka, [{ topic, partitions: 1 }]);
    const producer = kafka.producer();
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'poison' }] });
    await producer.disconnect();

    const consumer = kafka.consumer({ groupId: uniqueName('crash-') });
    const { failed, fail } = failureSignal();
    watchConsumer(consumer, 'the test consumer', log, fail);
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async () => {
        throw new LtError('LT_RECORD_INVALID', 'the handler cannot take this record');
      },
    });
    const error = await Promise.race([
      failed,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 30_000)),
    ]);
    await consumer.disconnect();
    expect(error).toBeInstanceOf(LtError);
    expect(error!.code).toBe('LT_CONSUMER_STOPPED');
    expect(error!.message).toContain(
      'the test consumer stopped reading: the handler cannot take this record',
    );
  });
});
